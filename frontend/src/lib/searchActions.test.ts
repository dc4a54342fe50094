// What a saved search keeps and how it runs again, a topic made of a search, an export's file
// name and the search's refusals in words.
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/errors";
import { parseFilters } from "./filters";
import type { SearchState } from "./search";
import { exportFileName, fromSaved, narrowed, savedFilters, searchErrorText, topicQueryOf } from "./searchActions";

describe("a saved search", () => {
  const filters = parseFilters("?topic=7&platform=reddit&product=pulse-phone&window=1h");
  const state: SearchState = { q: "refund*", order: "relevance", range: "7d", sentiment: "negative", lang: "de" };

  it("keeps the filters (the topic as a number) and the order, not a relative range", () => {
    expect(savedFilters(filters, state)).toEqual({ topic: 7, platform: "reddit", product: "pulse-phone", sentiment: "negative", lang: "de", order: "relevance" });
    expect(savedFilters({ window: "5m" }, { q: "x", order: "newest", range: "all" })).toEqual({});
    expect(savedFilters({ window: "5m" }, { q: "x", order: "newest", range: "custom", from: "2026-11-16T00:00:00Z" })).toEqual({ from: "2026-11-16T00:00:00Z" });
  });

  it("runs again as it was saved, the dashboard's window kept", () => {
    const saved = { query: "refund*", filters: savedFilters(filters, state) };
    expect(fromSaved(saved, "1h")).toEqual({ filters, state: { ...state, range: "all" } });
    expect(fromSaved({ query: "x", filters: { from: "2026-11-16T00:00:00Z", to: "2026-11-23T00:00:00Z", platform: "nope", topic: "abc", order: "random" } }, "5m")).toEqual({
      filters: { window: "5m" },
      state: { q: "x", order: "newest", range: "custom", from: "2026-11-16T00:00:00Z", to: "2026-11-23T00:00:00Z" },
    });
  });
});

describe("a saved search's labels", () => {
  it("are left out when no post holds them", () => {
    const saved = { query: "x", filters: { product: "pulse\u200Bphone", channel: "support", city: "Ly\u202Eon" } };
    expect(fromSaved(saved, "5m").filters).toEqual({ window: "5m", channel: "support" });
  });
});

describe("a topic made of a search", () => {
  it("is the query with the label filters and the language as fields", () => {
    expect(topicQueryOf({ q: "refund*" })).toEqual({ query: "refund*", left: [] });
    expect(topicQueryOf({ q: "refund* OR money", platform: "reddit", city: "São Paulo", lang: "pt-BR" })).toEqual({
      query: '(refund* OR money) platform:reddit city:"São Paulo" lang:pt-BR',
      left: [],
    });
  });
  it("lists what a topic cannot say", () => {
    expect(topicQueryOf({ q: "x", sentiment: "negative", topic: "7", from: "2026-11-16T00:00:00Z", lang: "und", product: 'say "hi"' })).toEqual({
      query: "x",
      left: ["product", "lang", "sentiment", "topic", "range"],
    });
  });
});

describe("the search's refusals in words", () => {
  it("says what to do", () => {
    expect(searchErrorText(new ApiError(400, "invalid_topic_query", "expected a term (at character 10)"))).toBe("The query does not parse: expected a term (at character 10).");
    expect(searchErrorText(new ApiError(400, "invalid_cursor", "cursor belongs to another search"))).toMatch(/run the search again/);
    expect(searchErrorText(new ApiError(429, "rate_limited", "one export at a time"))).toMatch(/export of yours is still running/);
    expect(searchErrorText(new ApiError(503, "busy", "four exports run"))).toMatch(/as many exports as it may/);
    expect(searchErrorText(new ApiError(403, "forbidden", "this route needs the editor role"))).toMatch(/ask an editor or an admin/);
    expect(searchErrorText(new ApiError(409, "name_taken", "a saved search named `x` exists"))).toMatch(/^That name is taken/);
    expect(searchErrorText(new ApiError(504, "timeout", "statement timeout"))).toMatch(/shorter range/);
    expect(searchErrorText(new TypeError("Failed to fetch"))).toBe("Could not reach the server: Failed to fetch.");
  });
});

describe("the rest", () => {
  it("names an export by when it was asked for", () => {
    expect(exportFileName("jsonl", new Date(2026, 10, 20, 14, 5))).toBe("pulse-search-2026-11-20-1405.jsonl");
  });
  it("knows whether anything narrows the search besides its query", () => {
    expect(narrowed({ window: "1h" }, { q: "x", order: "relevance", range: "all" })).toBe(false);
    expect(narrowed({ window: "1h", city: "Lyon" }, { q: "x", order: "newest", range: "all" })).toBe(true);
    expect(narrowed({ window: "1h" }, { q: "x", order: "newest", range: "1h" })).toBe(true);
    expect(narrowed({ window: "1h" }, { q: "x", order: "newest", range: "all", lang: "de" })).toBe(true);
  });
});
