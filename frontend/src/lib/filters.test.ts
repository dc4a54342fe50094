import { describe, expect, it } from "vitest";
import { alertInView, filtersToSearch, isLabel, labelFilters, liveFilter, parseFilters, topicId, trendScope } from "./filters";

describe("filters in the URL", () => {
  it("round-trips", () => {
    const f = { topic: "7", platform: "reddit" as const, product: "pulse-phone", city: "Lyon", window: "1h" as const };
    expect(parseFilters(`?${filtersToSearch(f)}`)).toEqual(f);
  });
  it("leaves the default window out and drops values the API would refuse", () => {
    expect(filtersToSearch({ window: "5m" })).toBe("");
    expect(parseFilters("?platform=myspace&window=2y&product=&channel=%20")).toEqual({ window: "5m" });
    expect(parseFilters(`?country=${"x".repeat(129)}`)).toEqual({ window: "5m" });
  });
  it("drops labels no post holds, which would show as another", () => {
    // A zero-width space, a right-to-left override, an isolate, a byte order mark, a bell.
    for (const bad of ["pulse\u200Bphone", "\u202Eenohp-eslup", "pulse\u2066phone", "pulse\uFEFFphone", "pulse\u0007phone", "pulse\u0085phone"]) {
      expect(isLabel(bad), JSON.stringify(bad)).toBe(false);
      expect(parseFilters(`?product=${encodeURIComponent(bad)}&city=Lyon`), JSON.stringify(bad)).toEqual({ window: "5m", city: "Lyon" });
    }
    // Counted in bytes, as the API and the socket count: 43 three-byte characters are 129.
    expect(parseFilters(`?city=${encodeURIComponent("東".repeat(43))}`)).toEqual({ window: "5m" });
    expect(parseFilters(`?city=${encodeURIComponent("東".repeat(42))}`).city).toBe("東".repeat(42));
    expect(isLabel("São Paulo")).toBe(true);
    expect(isLabel("القاهرة")).toBe(true);
  });
  it("encodes labels safely", () => {
    const s = filtersToSearch({ city: "São Paulo & co", window: "5m" });
    expect(parseFilters(s).city).toBe("São Paulo & co");
  });
  it("keeps the topic first and only as a positive integer", () => {
    expect(filtersToSearch({ window: "5m", city: "Lyon", topic: "12" })).toBe("topic=12&city=Lyon");
    for (const bad of ["0", "-3", "1.5", "7a", "1e3", "abc", "", "99999999999999999"]) {
      expect(parseFilters(`?topic=${encodeURIComponent(bad)}`), bad).toEqual({ window: "5m" });
    }
    expect(parseFilters("?topic=007").topic).toBe("7");
    expect(parseFilters("?topic=%207%20").topic).toBe("7");
  });
  it("reads topic ids", () => {
    expect(topicId("42")).toBe("42");
    expect(topicId(String(Number.MAX_SAFE_INTEGER))).toBe(String(Number.MAX_SAFE_INTEGER));
    expect(topicId(null)).toBeUndefined();
    expect(topicId("0x10")).toBeUndefined();
  });
});

describe("what the API and the socket are sent", () => {
  it("REST calls carry the topic with the label filters", () => {
    expect(labelFilters({ window: "1h", topic: "7", platform: "reddit" })).toEqual({ topic: "7", platform: "reddit" });
    expect(labelFilters({ window: "1h" })).toEqual({});
  });
  it("the WebSocket filter names the topic by a number", () => {
    const f = liveFilter({ window: "1h", topic: "7", product: "pulse-phone" });
    expect(f).toEqual({ topic: 7, product: "pulse-phone" });
    expect(JSON.stringify(f)).toBe('{"product":"pulse-phone","topic":7}');
    expect(liveFilter({ window: "5m", city: "Lyon" })).toEqual({ city: "Lyon" });
    expect(liveFilter({ window: "5m" })).toEqual({});
  });
});

describe("trend scope", () => {
  it("follows the first label filter", () => {
    expect(trendScope({ window: "5m" })).toEqual({ dimension: "overall", partial: false });
    expect(trendScope({ window: "5m", channel: "support" })).toEqual({ dimension: "channel", key: "support", partial: false });
    expect(trendScope({ window: "5m", platform: "reddit", city: "Lyon" })).toEqual({ dimension: "platform", key: "reddit", partial: true });
  });
  it("follows the topic before the other filters", () => {
    expect(trendScope({ window: "5m", topic: "7" })).toEqual({ dimension: "topic", key: "7", partial: false });
    expect(trendScope({ window: "5m", platform: "reddit", topic: "7" })).toEqual({ dimension: "topic", key: "7", partial: true });
  });
});

describe("alerts in view (the WebSocket's filter rule)", () => {
  it("shows whole-stream alerts only without filters", () => {
    expect(alertInView({ window: "5m" }, "overall", "")).toBe(true);
    expect(alertInView({ window: "5m", platform: "reddit" }, "overall", "")).toBe(false);
    expect(alertInView({ window: "5m", topic: "7" }, "overall", "")).toBe(false);
  });
  it("matches an alert's own key", () => {
    expect(alertInView({ window: "5m", platform: "reddit" }, "platform", "reddit")).toBe(true);
    expect(alertInView({ window: "5m", platform: "reddit" }, "platform", "twitter")).toBe(false);
    expect(alertInView({ window: "5m", platform: "reddit", city: "Lyon" }, "platform", "reddit")).toBe(false);
  });
  it("matches a topic alert by the topic's id", () => {
    expect(alertInView({ window: "5m", topic: "7" }, "topic", "7")).toBe(true);
    expect(alertInView({ window: "5m", topic: "7" }, "topic", "9")).toBe(false);
    expect(alertInView({ window: "5m", topic: "7", platform: "reddit" }, "topic", "7")).toBe(false);
    expect(alertInView({ window: "5m", platform: "reddit" }, "topic", "7")).toBe(false);
  });
});
