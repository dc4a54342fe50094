// The global filters: every panel reads them, the URL holds them so a view can be shared.
import { platforms, windows } from "../api/constants";
import type { Platform, SubscribeFilter, Window } from "../api/schemas";

export interface Filters {
  /** A topic's id (`GET /api/v1/topics`), kept as the URL and the REST queries write it. */
  topic?: string;
  platform?: Platform;
  product?: string;
  city?: string;
  country?: string;
  channel?: string;
  window: Window;
  /** A fixed period (RFC 3339, both or neither) shown instead of the rolling window. */
  since?: string;
  until?: string;
  /** The panels shown, by id; absent: every panel. */
  panels?: string[];
  /** The saved view the page was opened from (`saved_view`), while its state is unchanged. */
  savedView?: string;
}

/** The label filters, in display order: the topic first, as it scopes everything else. */
export const filterKeys = ["topic", "platform", "product", "channel", "country", "city"] as const;
export type FilterKey = (typeof filterKeys)[number];

export const defaultFilters: Filters = { window: "5m" };

/** A topic id as the API takes it (a positive integer), written canonically; undefined otherwise. */
export function topicId(value: string | null | undefined): string | undefined {
  const v = value?.trim();
  if (!v || !/^\d{1,16}$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n > 0 ? String(n) : undefined;
}

/**
 * Characters no stored label holds: the server refuses a post whose product, channel, city or
 * country has one, and a live subscription whose filter names one (`models::printable` there).
 * Controls, and those that are not seen or that reorder the text around them. A filter holding
 * one matches nothing yet shows as a real label ("pulse\u200bphone" reads "pulsephone"), so a
 * link or a shared view could pass an empty dashboard off as a product's, with the live feed
 * refused behind it.
 */
const UNSHOWABLE = /[\p{Cc}\u200B-\u200F\u202A-\u202E\u2028\u2029\u2060-\u2064\u2066-\u2069\uFEFF]/u;
/** The longest label a post holds, in bytes of UTF-8 (as the API counts). */
const MAX_LABEL_BYTES = 128;
const utf8 = new TextEncoder();

/** Whether `v` could be a stored label: not empty, at most 128 bytes, nothing unshowable. */
export function isLabel(v: string | null | undefined): v is string {
  return !!v && utf8.encode(v).length <= MAX_LABEL_BYTES && !UNSHOWABLE.test(v);
}

/** Reads filters from a query string, ignoring values the API would refuse. */
export function parseFilters(search: string): Filters {
  const q = new URLSearchParams(search);
  const out: Filters = { ...defaultFilters };
  const w = q.get("window");
  if (w && (windows as readonly string[]).includes(w)) out.window = w as Window;
  const topic = topicId(q.get("topic"));
  if (topic) out.topic = topic;
  const p = q.get("platform");
  if (p && (platforms as readonly string[]).includes(p)) out.platform = p as Platform;
  for (const key of ["product", "city", "country", "channel"] as const) {
    const v = q.get(key)?.trim();
    if (isLabel(v)) out[key] = v;
  }
  const since = q.get("since");
  const until = q.get("until");
  if (isInstant(since) && isInstant(until) && Date.parse(since) < Date.parse(until)) {
    out.since = since;
    out.until = until;
  }
  const panels = q.get("panels")?.split(",").filter((p) => /^[a-z][a-z0-9-]{0,31}$/.test(p));
  if (panels?.length) out.panels = [...new Set(panels)].slice(0, 40);
  const saved = q.get("saved_view");
  if (saved && /^\d{1,16}$/.test(saved)) out.savedView = saved;
  return out;
}

/** Whether `v` is an RFC 3339 time the API takes. */
function isInstant(v: string | null): v is string {
  return !!v && v.length <= 40 && /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v));
}

/** The URL keys the dashboard's state owns besides the label filters. */
const stateKeys = ["window", "since", "until", "panels", "saved_view"] as const;

/** The query string for `filters` (without `?`); the default window is left out. */
export function filtersToSearch(filters: Filters): string {
  const q = new URLSearchParams();
  for (const key of filterKeys) {
    const v = filters[key];
    if (v) q.set(key, v);
  }
  if (filters.since && filters.until) {
    q.set("since", filters.since);
    q.set("until", filters.until);
  } else if (filters.window !== defaultFilters.window) q.set("window", filters.window);
  if (filters.panels?.length) q.set("panels", filters.panels.join(","));
  if (filters.savedView) q.set("saved_view", filters.savedView);
  return q.toString();
}

/**
 * `search` (a query string) with `filters` written into it: their keys replaced, the others
 * (the Search view's) kept.
 */
export function withFilters(search: string, filters: Filters): string {
  const p = new URLSearchParams(search);
  for (const k of [...filterKeys, ...stateKeys]) p.delete(k);
  for (const [k, v] of new URLSearchParams(filtersToSearch(filters))) p.set(k, v);
  return p.toString();
}

/** The label filters only (the topic included), as the REST API takes them. */
export function labelFilters(filters: Filters): Partial<Record<FilterKey, string>> {
  const out: Partial<Record<FilterKey, string>> = {};
  for (const key of filterKeys) {
    const v = filters[key];
    if (v) out[key] = v;
  }
  return out;
}

/**
 * The WebSocket's filter: the label filters with the topic as a number, since the server
 * refuses a topic id written as a string.
 */
export function liveFilter(filters: Filters): SubscribeFilter {
  const { topic, ...labels } = labelFilters(filters);
  const out = labels as SubscribeFilter;
  if (topic) out.topic = Number(topic);
  return out;
}

export function hasLabelFilters(filters: Filters): boolean {
  return filterKeys.some((k) => filters[k]);
}

/**
 * The series the trend chart can show: the time series is kept per dimension (topics
 * included), so with one label filter it is that dimension's key; with none, the whole
 * stream; with several, the first, the topic before the others (the chart says so).
 */
export function trendScope(filters: Filters): { dimension: string; key?: string; partial: boolean } {
  const set = filterKeys.filter((k) => filters[k]);
  if (set.length === 0) return { dimension: "overall", partial: false };
  return { dimension: set[0], key: filters[set[0]], partial: set.length > 1 };
}

/**
 * Whether an alert about (`dimension`, `key`) is in view: the WebSocket's rule, so the REST
 * list and the live feed agree. Every label filter set must be the alert's own key (a topic
 * alert's key is the topic's id); an alert about the whole stream shows only without filters.
 */
export function alertInView(filters: Filters, dimension: string, key: string): boolean {
  const set = filterKeys.filter((k) => filters[k]);
  return set.every((k) => k === dimension && filters[k] === (k === "topic" ? topicId(key) : key));
}
