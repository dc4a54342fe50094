// The Search view's state and what it asks the API: the query, its own filters and range, the
// URL that keeps them, and the parameters of a search and of its export. Pure, so all of it is
// unit-tested. The view's other logic (saving, making a topic, errors in words: ./searchActions;
// highlights and buckets: ./searchResults) loads with it, not with the dashboard.
import { labelFilters, type Filters } from "./filters";

export const searchOrders = ["newest", "relevance"] as const;
export type SearchOrder = (typeof searchOrders)[number];

/** How far back a search looks: relative to when it runs, or `custom` (a saved search's `from`/`to`). */
export const searchRanges = ["all", "1h", "24h", "7d", "30d", "custom"] as const;
export type SearchRange = (typeof searchRanges)[number];
export const rangeNames: Record<SearchRange, string> = {
  all: "All time",
  "1h": "Last hour",
  "24h": "Last 24 hours",
  "7d": "Last 7 days",
  "30d": "Last 30 days",
  custom: "Saved range",
};
const rangeMs: Record<Exclude<SearchRange, "all" | "custom">, number> = {
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
  "30d": 30 * 86_400_000,
};

export const sentiments = ["negative", "neutral", "positive"] as const;
export type Sentiment = (typeof sentiments)[number];

/** Hits a page asks for (the API's default). */
export const PAGE_SIZE = 20;

/**
 * What the Search view holds besides the dashboard's filters (which it applies too): the query
 * as last run, its order and range, and the filters only a search has (sentiment, language),
 * which the facets set.
 */
export interface SearchState {
  q: string;
  order: SearchOrder;
  range: SearchRange;
  /** With `range: "custom"`: RFC 3339 bounds, `[from, to)`. */
  from?: string;
  to?: string;
  sentiment?: Sentiment;
  /** A language code, `und` for posts with none. */
  lang?: string;
}

export const defaultSearch: SearchState = { q: "", order: "newest", range: "all" };

/** The URL's keys the Search view owns (the dashboard's filters own theirs). */
export const searchKeys = ["view", "q", "order", "range", "from", "to", "sentiment", "lang"] as const;

/** Which view the page shows. */
export type View = "dashboard" | "search";

/** Whether `v` is a time the API takes (RFC 3339, as `Date` reads it). */
export const isTime = (v: string | null | undefined): v is string => !!v && v.length <= 40 && !Number.isNaN(Date.parse(v));
/** Whether `v` reads as a language code (`de`, `pt-BR`). */
export const isLang = (v: string | null | undefined): v is string => !!v && /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$/.test(v) && v.length <= 35;

/** The view and the search in a query string, ignoring values the API would refuse. */
export function parseSearch(search: string): { view: View; state: SearchState } {
  const p = new URLSearchParams(search);
  const state: SearchState = { ...defaultSearch };
  const q = p.get("q")?.trim();
  if (q) state.q = q;
  const order = p.get("order");
  if (order && (searchOrders as readonly string[]).includes(order)) state.order = order as SearchOrder;
  const range = p.get("range");
  if (range && (searchRanges as readonly string[]).includes(range)) state.range = range as SearchRange;
  if (state.range === "custom") {
    const from = p.get("from");
    const to = p.get("to");
    if (isTime(from)) state.from = from;
    if (isTime(to)) state.to = to;
    if (!state.from && !state.to) state.range = "all";
  }
  const sentiment = p.get("sentiment");
  if (sentiment && (sentiments as readonly string[]).includes(sentiment)) state.sentiment = sentiment as Sentiment;
  const lang = p.get("lang");
  if (isLang(lang)) state.lang = lang;
  return { view: p.get("view") === "search" ? "search" : "dashboard", state };
}

/**
 * `search` (a query string) with the view and the search written into it, the other keys (the
 * dashboard's filters) kept; defaults are left out. The search stays in the URL on the
 * dashboard, so going back to Search finds it.
 */
export function withSearch(search: string, view: View, state: SearchState): string {
  const p = new URLSearchParams(search);
  for (const k of searchKeys) p.delete(k);
  if (view === "search") p.set("view", "search");
  if (state.q) p.set("q", state.q);
  if (state.order !== defaultSearch.order) p.set("order", state.order);
  if (state.range !== defaultSearch.range) p.set("range", state.range);
  if (state.range === "custom") {
    if (state.from) p.set("from", state.from);
    if (state.to) p.set("to", state.to);
  }
  if (state.sentiment) p.set("sentiment", state.sentiment);
  if (state.lang) p.set("lang", state.lang);
  return p.toString();
}

/** A search's query and filters, as both `GET /api/v1/search` and its export take them. */
export interface SearchFilters {
  q: string;
  topic?: string;
  platform?: string;
  product?: string;
  channel?: string;
  country?: string;
  city?: string;
  sentiment?: string;
  lang?: string;
  from?: string;
  to?: string;
}

/**
 * The search to run: the query, the dashboard's label filters (the topic included; not its
 * window: a search has its own range) and the search's own, with a relative range turned into
 * `from` as of `now`. A run keeps its `from`, since its cursors belong to it.
 */
export function searchFilters(filters: Filters, state: SearchState, now: number): SearchFilters {
  const out: SearchFilters = { q: state.q, ...labelFilters(filters) };
  if (state.sentiment) out.sentiment = state.sentiment;
  if (state.lang) out.lang = state.lang;
  if (state.range === "custom") {
    if (state.from) out.from = state.from;
    if (state.to) out.to = state.to;
  } else if (state.range !== "all") {
    out.from = new Date(now - rangeMs[state.range]).toISOString();
  }
  return out;
}

/** One page of a search: its order, size, the previous page's cursor, and whether to count facets. */
export interface PageRequest {
  order: SearchOrder;
  limit?: number;
  cursor?: string | null;
  facets?: boolean;
}

/** The query parameters of a page of `GET /api/v1/search`. */
export function searchPageParams(f: SearchFilters, page: PageRequest): Record<string, string | number | undefined> {
  return {
    ...f,
    order: page.order === "newest" ? undefined : page.order,
    limit: page.limit ?? PAGE_SIZE,
    cursor: page.cursor ?? undefined,
    facets: page.facets ? "true" : undefined,
  };
}

export type ExportFormat = "csv" | "jsonl";

/** The filters `POST /api/v1/saved-searches` stores with a search (the topic as a number). */
export type SavedFilters = Record<string, string | number>;

/** The query parameters of `GET /api/v1/search/export`: the search's own, nothing of a page. */
export function exportParams(f: SearchFilters, format: ExportFormat): Record<string, string | undefined> {
  return { ...f, format };
}

