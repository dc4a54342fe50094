// What the Search view does with a search, besides running it: what a saved search keeps and
// how one runs again, a topic query made of a search, an export's file name, and refusals in
// words. Pure, so all of it is unit-tested; loaded with the view.
import { ApiError } from "../api/errors";
import { platforms } from "../api/constants";
import type { Platform, SavedSearch } from "../api/schemas";
import { filterKeys, isLabel, topicId, type Filters } from "./filters";
import { topicErrorText } from "./topics";
import {
  defaultSearch, isLang, isTime, searchFilters, searchOrders, sentiments, type ExportFormat, type SavedFilters, type SearchFilters,
  type SearchOrder, type SearchState, type Sentiment,
} from "./search";

/**
 * What a saved search keeps of a run: its filters and order. A relative range is not kept (the
 * API stores bounds, which would no longer be "the last 7 days" tomorrow); a custom one is.
 */
export function savedFilters(filters: Filters, state: SearchState): SavedFilters {
  const out: SavedFilters = {};
  const f = searchFilters(filters, { ...state, range: state.range === "custom" ? "custom" : "all" }, 0);
  for (const [k, v] of Object.entries(f)) if (k !== "q" && v !== undefined) out[k] = k === "topic" ? Number(v) : v;
  if (state.order !== "newest") out.order = state.order;
  return out;
}

/** A saved search as the view's state and the dashboard's filters (`window` kept as it was). */
export function fromSaved(saved: Pick<SavedSearch, "query" | "filters">, window: Filters["window"]): { filters: Filters; state: SearchState } {
  const f = saved.filters;
  const str = (k: string) => {
    const v = f[k];
    return typeof v === "string" && v.trim() ? v.trim() : undefined;
  };
  const filters: Filters = { window };
  const topic = topicId(f.topic === undefined ? undefined : String(f.topic));
  if (topic) filters.topic = topic;
  const platform = str("platform");
  if (platform && (platforms as readonly string[]).includes(platform)) filters.platform = platform as Platform;
  for (const k of ["product", "channel", "country", "city"] as const) {
    const v = str(k);
    if (isLabel(v)) filters[k] = v;
  }
  const state: SearchState = { ...defaultSearch, q: saved.query };
  const order = str("order");
  if (order && (searchOrders as readonly string[]).includes(order)) state.order = order as SearchOrder;
  const sentiment = str("sentiment");
  if (sentiment && (sentiments as readonly string[]).includes(sentiment)) state.sentiment = sentiment as Sentiment;
  const lang = str("lang");
  if (isLang(lang)) state.lang = lang;
  const from = str("from");
  const to = str("to");
  if (isTime(from) || isTime(to)) {
    state.range = "custom";
    if (isTime(from)) state.from = from;
    if (isTime(to)) state.to = to;
  }
  return { filters, state };
}

/** `pulse-search-2026-11-20-1405.csv`: an export's file name, by when it was asked for. */
export function exportFileName(format: ExportFormat, at: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const day = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
  return `pulse-search-${day}-${pad(at.getHours())}${pad(at.getMinutes())}.${format}`;
}

/** Filters a topic's query can say as fields (`platform:reddit`); the others it cannot. */
const topicFields = ["platform", "product", "channel", "country", "city", "lang"] as const;

/**
 * A topic query that matches what the search matches, as far as the language can say it: the
 * query, and each label filter and the language as a field. Sentiment, the topic filter and a
 * range are not properties a topic can match on; they are listed in `left`.
 */
export function topicQueryOf(f: SearchFilters): { query: string; left: string[] } {
  const fields: string[] = [];
  const left: string[] = [];
  for (const k of topicFields) {
    const v = f[k];
    if (!v) continue;
    if (k === "lang" && v === "und") left.push(k);
    else if (v.includes('"') || v.includes("“") || v.includes("”")) left.push(k);
    else fields.push(/^[\p{L}\p{N}._-]+$/u.test(v) ? `${k}:${v}` : `${k}:"${v}"`);
  }
  for (const k of ["sentiment", "topic"] as const) if (f[k]) left.push(k);
  if (f.from || f.to) left.push("range");
  const q = f.q.trim();
  const query = fields.length === 0 ? q : `(${q}) ${fields.join(" ")}`;
  return { query, left };
}

/** Whether any filter narrows the search besides its query. */
export function narrowed(filters: Filters, state: SearchState): boolean {
  return filterKeys.some((k) => filters[k]) || !!state.sentiment || !!state.lang || state.range !== "all";
}

/** A failed search, export or saved-search call in words. */
export function searchErrorText(e: unknown): string {
  if (!(e instanceof ApiError)) return `Could not reach the server: ${(e as Error)?.message ?? String(e)}.`;
  switch (e.code) {
    case "invalid_topic_query":
      return topicErrorText(e);
    case "invalid_cursor":
      return "The next page belongs to an earlier search: run the search again.";
    case "query_too_broad":
      return `Too broad to count: ${e.message}.`;
    case "rate_limited":
      return "An export of yours is still running: wait for it to finish, then try again.";
    case "busy":
      return "The server is running as many exports as it may: try again in a minute.";
    case "name_taken":
      return `That name is taken: ${e.message}; choose another.`;
    case "limit_reached":
      return `No room for another saved search: ${e.message}.`;
    case "invalid_request":
    case "invalid_query":
      return `The server refused: ${e.message}.`;
  }
  if (e.status === 403) return `Your key's role may not do this: ask an editor or an admin (${e.message}).`;
  if (e.status === 404) return "Not found: it may have been deleted meanwhile.";
  if (e.status === 503) return `The database is busy: ${e.message}. Try again in a moment.`;
  if (e.status === 504) return "The search took longer than the server allows: add words, filters or a shorter range.";
  return `The server refused: ${e.message}.`;
}
