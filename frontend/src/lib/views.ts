// Saved views: the dashboard's state (the filters, the window or a fixed period, the panels
// shown) as the server keeps it, and back.
import type { Platform, ViewState } from "../api/schemas";
import { defaultFilters, isLabel, type Filters } from "./filters";

/** The dashboard's panels, in page order: the ids a view's `panels` name. */
export const PANELS = [
  { id: "overall", label: "Overall sentiment" },
  { id: "topics", label: "Topics" },
  { id: "review", label: "Review queue" },
  { id: "trend", label: "Trend" },
  { id: "emotions", label: "Emotions" },
  { id: "platforms", label: "By platform" },
  { id: "products", label: "Share of voice by product" },
  { id: "channels", label: "By channel" },
  { id: "languages", label: "By language" },
  { id: "countries", label: "By country" },
  { id: "cities", label: "By city" },
  { id: "stream", label: "Live stream" },
  { id: "alerts", label: "Alerts" },
  { id: "viral", label: "Trending & viral" },
  { id: "stories", label: "Stories" },
  { id: "forecast", label: "Forecast a post" },
  { id: "digests", label: "Digests" },
  { id: "pipeline", label: "Pipeline health" },
  { id: "alert-channels", label: "Alert channels" },
] as const;

export type PanelId = (typeof PANELS)[number]["id"];

/** Whether `filters` show panel `id` (every panel when none is named). */
export function shows(filters: Filters, id: PanelId): boolean {
  return !filters.panels?.length || filters.panels.includes(id);
}

/** The state a view of `filters` keeps; the view it was opened from is not part of it. */
export function stateOf(filters: Filters): ViewState {
  const state: ViewState = { filters: {}, panels: filters.panels ?? [] };
  if (filters.topic) state.topic = Number(filters.topic);
  for (const key of ["platform", "product", "channel", "country", "city"] as const) {
    const v = filters[key];
    if (v) state.filters[key] = v;
  }
  if (filters.since && filters.until) {
    state.from = filters.since;
    state.to = filters.until;
  } else state.window = filters.window;
  return state;
}

/**
 * The filters of view `id` with `state`; a period in the address (a digest's link) replaces the
 * view's own window or period.
 */
export function filtersOf(id: number, state: ViewState, period?: { since: string; until: string }): Filters {
  const out: Filters = { ...defaultFilters, savedView: String(id) };
  if (state.topic) out.topic = String(state.topic);
  const f = state.filters;
  if (f.platform) out.platform = f.platform as Platform;
  // A shared view is anyone's writing: a label no post holds is left out, not shown as another.
  for (const key of ["product", "channel", "country", "city"] as const) {
    const v = f[key];
    if (isLabel(v)) out[key] = v;
  }
  if (state.window) out.window = state.window;
  if (state.from && state.to) {
    out.since = state.from;
    out.until = state.to;
  }
  if (period) {
    out.since = period.since;
    out.until = period.until;
  }
  if (state.panels.length) out.panels = [...state.panels];
  return out;
}

/**
 * Whether `filters` still show view `state` as saved (else the page says it was changed). A
 * period over a view of a rolling window (a digest's link) is the view, not a change to it.
 */
export function unchanged(filters: Filters, state: ViewState): boolean {
  const ours = stateOf(filters);
  const theirs: ViewState = { ...state, filters: { ...state.filters } };
  // A view without a window shows the default one.
  if (!theirs.window && !theirs.from) theirs.window = defaultFilters.window;
  if (ours.from && theirs.window) {
    delete ours.from;
    delete ours.to;
    ours.window = theirs.window;
  }
  const canon = (s: ViewState) =>
    JSON.stringify([s.topic ?? null, Object.entries(s.filters).sort(), s.window ?? null, s.from ?? null, s.to ?? null, s.panels]);
  return canon(ours) === canon(theirs);
}
