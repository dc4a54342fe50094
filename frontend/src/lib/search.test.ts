// The Search view's URL, the parameters of a search and of its export, and the requests the
// REST client makes of them (bearer header included), the facets' fallback among them.
import { describe, expect, it, vi } from "vitest";
import { createApi, type Credentials } from "../api/client";
import { ApiError } from "../api/errors";
import type { SearchPage } from "../api/schemas";
import { firstPage } from "../hooks/useSearch";
import { parseFilters, withFilters } from "./filters";
import { defaultSearch, exportParams, parseSearch, searchFilters, searchPageParams, withSearch, type SearchState } from "./search";

const NOW = Date.parse("2026-11-21T12:00:00Z");

describe("the Search view in the URL", () => {
  it("reads the view and the search, ignoring what the API would refuse", () => {
    expect(parseSearch("")).toEqual({ view: "dashboard", state: defaultSearch });
    expect(parseSearch("?view=search&q=%20refund*%20&order=relevance&range=7d&sentiment=negative&lang=pt-BR&platform=reddit")).toEqual({
      view: "search",
      state: { q: "refund*", order: "relevance", range: "7d", sentiment: "negative", lang: "pt-BR" },
    });
    expect(parseSearch("?view=nope&order=random&range=1y&sentiment=angry&lang=x%20y").state).toEqual(defaultSearch);
    // A custom range needs a bound; without one it is all time.
    expect(parseSearch("?range=custom&from=2026-11-16T00:00:00Z").state).toMatchObject({ range: "custom", from: "2026-11-16T00:00:00Z" });
    expect(parseSearch("?range=custom&from=yesterday").state.range).toBe("all");
    // `from` and `to` only count with a custom range.
    expect(parseSearch("?range=7d&from=2026-11-16T00:00:00Z").state.from).toBeUndefined();
  });

  it("writes the search beside the filters, each keeping the other's keys", () => {
    const state: SearchState = { q: 'refund NOT "gift card"', order: "relevance", range: "24h", lang: "de" };
    const url = withSearch("topic=7&window=1h", "search", state);
    expect(new URLSearchParams(url).get("q")).toBe('refund NOT "gift card"');
    expect(parseSearch(url)).toEqual({ view: "search", state });
    expect(parseFilters(url)).toEqual({ topic: "7", window: "1h" });
    // A filter change keeps the search, and a search change keeps the filters.
    const filtered = withFilters(url, { window: "1h", platform: "reddit" });
    expect(parseSearch(filtered)).toEqual({ view: "search", state });
    expect(parseFilters(filtered)).toEqual({ window: "1h", platform: "reddit" });
    // Defaults are left out; the dashboard keeps the search for the way back.
    expect(withSearch("", "search", { ...defaultSearch, q: "pulse" })).toBe("view=search&q=pulse");
    expect(withSearch("view=search&q=pulse&platform=x", "dashboard", { ...defaultSearch, q: "pulse" })).toBe("platform=x&q=pulse");
  });
});

describe("a search's parameters", () => {
  const filters = parseFilters("?topic=7&platform=reddit&window=1h&city=S%C3%A3o%20Paulo");

  it("are the query, the label filters (not the window), the search's own and its range as `from`", () => {
    expect(searchFilters(filters, { q: "refund*", order: "newest", range: "all" }, NOW)).toEqual({
      q: "refund*",
      topic: "7",
      platform: "reddit",
      city: "São Paulo",
    });
    expect(searchFilters({ window: "5m" }, { q: "x", order: "newest", range: "24h", sentiment: "negative", lang: "und" }, NOW)).toEqual({
      q: "x",
      sentiment: "negative",
      lang: "und",
      from: "2026-11-20T12:00:00.000Z",
    });
    expect(
      searchFilters({ window: "5m" }, { q: "x", order: "newest", range: "custom", from: "2026-11-16T00:00:00Z", to: "2026-11-17T00:00:00Z" }, NOW),
    ).toEqual({ q: "x", from: "2026-11-16T00:00:00Z", to: "2026-11-17T00:00:00Z" });
  });

  it("of a page add order (newest is the default), size, cursor and facets; of an export only the format", () => {
    const f = { q: "refund*", platform: "reddit" };
    expect(searchPageParams(f, { order: "newest", facets: true })).toEqual({ ...f, order: undefined, limit: 20, cursor: undefined, facets: "true" });
    expect(searchPageParams(f, { order: "relevance", cursor: "abc", limit: 5 })).toEqual({ ...f, order: "relevance", limit: 5, cursor: "abc", facets: undefined });
    expect(exportParams(f, "jsonl")).toEqual({ ...f, format: "jsonl" });
  });
});

const page: SearchPage = { items: [], next_cursor: null, checked: 0 };
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const credentials = (token: string | null): Credentials => ({ token: async () => token, renew: async () => "fresh", signOut: () => {} });
const urls = (fetchFn: ReturnType<typeof vi.fn>) => fetchFn.mock.calls.map(([url]) => url as string);
const auth = (fetchFn: ReturnType<typeof vi.fn>) => fetchFn.mock.calls.map(([, init]) => new Headers((init as RequestInit).headers).get("authorization"));

describe("the REST client's search", () => {
  const f = searchFilters(parseFilters("?topic=7&platform=reddit"), { q: 'refund* NOT "gift card" #😡', order: "relevance", range: "1h", lang: "de" }, NOW);

  it("asks GET /api/v1/search with every parameter encoded", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => json(page));
    const api = createApi(credentials("jwt"), fetchFn);
    await api.search(f, { order: "relevance", facets: true });
    await api.search(f, { order: "relevance", cursor: "6162" });
    await api.search({ q: "a&b=c" }, { order: "newest" });
    expect(urls(fetchFn)).toEqual([
      "/api/v1/search?q=refund*+NOT+%22gift+card%22+%23%F0%9F%98%A1&topic=7&platform=reddit&lang=de&from=2026-11-21T11%3A00%3A00.000Z&order=relevance&limit=20&facets=true",
      "/api/v1/search?q=refund*+NOT+%22gift+card%22+%23%F0%9F%98%A1&topic=7&platform=reddit&lang=de&from=2026-11-21T11%3A00%3A00.000Z&order=relevance&limit=20&cursor=6162",
      "/api/v1/search?q=a%26b%3Dc&limit=20",
    ]);
    expect(auth(fetchFn)).toEqual(["Bearer jwt", "Bearer jwt", "Bearer jwt"]);
    // Read back, the query is the one typed.
    expect(new URL(urls(fetchFn)[0], "http://x").searchParams.get("q")).toBe('refund* NOT "gift card" #😡');
  });

  it("exports with the search's parameters and the bearer token, as a file", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => new Response("id,created_at\r\n", { status: 200, headers: { "content-type": "text/csv" } }));
    const blob = await createApi(credentials("jwt"), fetchFn).exportSearch(f, "csv");
    expect(urls(fetchFn)).toEqual([
      "/api/v1/search/export?q=refund*+NOT+%22gift+card%22+%23%F0%9F%98%A1&topic=7&platform=reddit&lang=de&from=2026-11-21T11%3A00%3A00.000Z&format=csv",
    ]);
    expect(auth(fetchFn)).toEqual(["Bearer jwt"]);
    expect(await blob.text()).toBe("id,created_at\r\n");
    // No page's parameters: the export refuses them.
    expect(urls(fetchFn)[0]).not.toMatch(/[?&](limit|cursor|order|facets|interval)=/);
  });

  it("an export refused says why", async () => {
    const busy = json({ error: { code: "rate_limited", message: "one export at a time", details: {} } }, 429);
    const fetchFn = vi.fn(async (..._: unknown[]) => busy);
    await expect(createApi(credentials(null), fetchFn).exportSearch({ q: "x" }, "jsonl")).rejects.toMatchObject({ status: 429, code: "rate_limited" });
    expect(auth(fetchFn)).toEqual([null]);
  });

  it("saves, lists and deletes saved searches", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => json({ items: [] }));
    const api = createApi(credentials("jwt"), fetchFn);
    await api.savedSearches();
    await api.saveSearch({ name: "Refunds", query: "refund*", filters: { topic: 7, lang: "de" } });
    fetchFn.mockResolvedValueOnce(new Response(null, { status: 204 }));
    await expect(api.deleteSavedSearch(3)).resolves.toBeUndefined();
    expect(fetchFn.mock.calls.map(([url, init]) => [url, (init as RequestInit).method ?? "GET", (init as RequestInit).body])).toEqual([
      ["/api/v1/saved-searches", "GET", undefined],
      ["/api/v1/saved-searches", "POST", JSON.stringify({ name: "Refunds", query: "refund*", filters: { topic: 7, lang: "de" } })],
      ["/api/v1/saved-searches/3", "DELETE", undefined],
    ]);
  });
});

describe("the first page", () => {
  const run = { filters: { q: "a NEAR/5 b" }, order: "newest" as const, at: NOW };

  it("asks for the facets", async () => {
    const search = vi.fn(async () => ({ ...page, facets: undefined }));
    await firstPage(run, undefined, search);
    expect(search).toHaveBeenCalledWith(run.filters, { order: "newest", facets: true }, undefined);
  });

  it("too broad to count: the hits all the same, with the refusal in place of the facets", async () => {
    const search = vi.fn(async (_f: unknown, p: { facets?: boolean }) => {
      if (p.facets) throw new ApiError(400, "query_too_broad", "counting these facets would check more than 20000 posts");
      return page;
    });
    const out = await firstPage(run, undefined, search);
    expect(out).toEqual({ ...page, facetsRefused: "counting these facets would check more than 20000 posts" });
    expect(search).toHaveBeenCalledTimes(2);
  });

  it("any other refusal is the search's", async () => {
    const search = vi.fn(async () => {
      throw new ApiError(400, "invalid_topic_query", "expected a term", undefined, { position: 10, expected: "a term" });
    });
    await expect(firstPage(run, undefined, search)).rejects.toMatchObject({ code: "invalid_topic_query" });
    expect(search).toHaveBeenCalledTimes(1);
  });
});
