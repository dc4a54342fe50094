// REST calls. Responses are typed by the schemas in ./schemas, which the contract test checks
// against what the server really sends; they are not re-validated at run time.
import type {
  Alert, AlertsPage, ChannelList, ForecastResponse, GeoResponse, ItemsResponse, LanguagesResponse, OverallResponse, PipelineResponse,
  ExportJob, PostsPage, ProductsResponse, SavedSearch, SavedSearchList, SearchPage, StoryList, TermsResponse, TestOutcome, TimeseriesResponse,
  Topic, TopicList, TopicMetrics, TopicPreview, TrendingPostsResponse, SavedView, ViewList, ViewState,
  DigestSchedule, DigestScheduleList, DigestPreview, SentNow, Label, LabelKind, LabelPage, ReviewBatch, Relevance, CalibrationState,
} from "./schemas";
import { labelFilters, trendScope, type Filters } from "../lib/filters";
import { exportParams, searchPageParams, type ExportFormat, type PageRequest, type SavedFilters, type SearchFilters } from "../lib/search";
import { session } from "./auth";
import { ApiError, apiError } from "./errors";

export { ApiError };

/** What the REST client needs from the sign-in session (`session` in ./auth). */
export interface Credentials {
  /** The bearer token to send, or null when the server asks for none. */
  token(): Promise<string | null>;
  /** A fresh token after a 401; rejects, having ended the session, when that fails. */
  renew(): Promise<string>;
  /** Ends the session, saying why on the sign-in screen. */
  signOut(reason: string): void;
}

/**
 * The REST API with `credentials`: every call carries `Authorization: Bearer` when there is a
 * token; a 401 renews the token once and retries once, since a token can expire between the
 * check and the call (a sleeping laptop, a skewed clock).
 */
export function createApi(credentials: Credentials, fetchFn: typeof fetch = (i, o) => fetch(i, o)) {
  const send = (path: string, init: RequestInit | undefined, token: string | null) => {
    const headers = new Headers(init?.headers);
    if (token) headers.set("Authorization", `Bearer ${token}`);
    return fetchFn(path, { ...init, headers });
  };

  /** A successful response to `path`, its body unread; an `ApiError` otherwise. */
  async function respond(path: string, init?: RequestInit): Promise<Response> {
    let res = await send(path, init, await credentials.token());
    if (res.status === 401) {
      res = await send(path, init, await credentials.renew());
      if (res.status === 401) credentials.signOut("The server refused a freshly issued access token.");
    }
    if (!res.ok) throw await apiError(res);
    return res;
  }
  async function request<T>(path: string, init?: RequestInit): Promise<T> {
    const res = await respond(path, init);
    // A deletion answers 204 with no body.
    if (res.status === 204) return undefined as T;
    return res.json() as Promise<T>;
  }
  const json = (method: string, body: unknown, signal?: AbortSignal): RequestInit => ({
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });

  return {
    overall: (f: Filters) => request<OverallResponse>(`/api/v1/metrics/overall${windowQuery(f)}`),
    platforms: (f: Filters) => request<ItemsResponse>(`/api/v1/metrics/platforms${windowQuery(f)}`),
    channels: (f: Filters) => request<ItemsResponse>(`/api/v1/metrics/channels${windowQuery(f)}`),
    languages: (f: Filters) => request<LanguagesResponse>(`/api/v1/metrics/languages${windowQuery(f)}`),
    products: (f: Filters) => request<ProductsResponse>(`/api/v1/metrics/products${windowQuery(f)}`),
    geo: (f: Filters) => request<GeoResponse>(`/api/v1/metrics/geo${windowQuery(f)}`),
    /** The last hour by minute, or a fixed period in buckets of at most 1,500 (the API's cap). */
    timeseries: (f: Filters) => {
      const scope = trendScope(f);
      const span = f.since && f.until ? { from: f.since, to: f.until, bucket: periodBucket(f.since, f.until) } : { bucket: "1m" };
      return request<TimeseriesResponse>(`/api/v1/metrics/timeseries${query({ dimension: scope.dimension, key: scope.key, ...span })}`);
    },
    /** The whole stream's terms, or the topic's (the endpoint takes no other filter). */
    terms: (f: Filters) => {
      const span = f.since && f.until ? { from: f.since, to: f.until } : { window: f.window === "1m" ? "5m" : f.window };
      return request<TermsResponse>(`/api/v1/trending/terms${query({ ...span, limit: 12, topic: f.topic })}`);
    },
    /** Active cascades by virality score, with the label filters (the listing has no window). */
    stories: (f: Filters, limit: number) =>
      request<StoryList>(`/api/v1/stories${query({ sort: "growing", limit, ...labelFilters(f) })}`),
    trendingPosts: (f: Filters, limit: number) =>
      request<TrendingPostsResponse>(`/api/v1/trending/posts${query({ limit, ...labelFilters(f) })}`),
    posts: (f: Filters) => request<PostsPage>(`/api/v1/posts${query({ limit: 50, ...labelFilters(f) })}`),
    alerts: () => request<AlertsPage>(`/api/v1/alerts${query({ limit: 50 })}`),
    acknowledge: (id: number) => request<Alert>(`/api/v1/alerts/${id}/ack`, { method: "POST" }),
    pipeline: () => request<PipelineResponse>(`/api/v1/pipeline`),
    /** Alert channels (admins only). */
    channelList: () => request<ChannelList>(`/api/v1/webhooks`),
    testChannel: (id: number) => request<TestOutcome>(`/api/v1/webhooks/${id}/test`, { method: "POST" }),
    /** Every live topic, by id, read a page at a time. */
    topics: async (): Promise<TopicList> => {
      const items: TopicList["items"] = [];
      let after: number | null = null;
      do {
        const page: TopicList = await request<TopicList>(`/api/v1/topics${query({ after: after ?? undefined })}`);
        items.push(...page.items);
        after = page.next_after ?? null;
      } while (after !== null);
      return { items, next_after: null };
    },
    /** Editors and admins; a refused query rejects with `invalid_topic_query` and its position. */
    createTopic: (topic: NewTopic) => request<Topic>(`/api/v1/topics`, json("POST", topic)),
    updateTopic: (id: number, patch: TopicPatch) => request<Topic>(`/api/v1/topics/${id}`, json("PATCH", patch)),
    deleteTopic: (id: number) => request<void>(`/api/v1/topics/${id}`, { method: "DELETE" }),
    /**
     * What `q` matches among the posts of the last `hours`, with `samples` of each kind. The
     * server runs one preview per caller at a time and answers a second with 429.
     */
    previewTopic: (q: string, hours = 24, signal?: AbortSignal, samples = PREVIEW_SAMPLES) =>
      request<TopicPreview>(`/api/v1/topic-preview`, json("POST", { query: q, hours, samples }, signal)),
    /** Share of voice between topics: the window and every filter but the topic. */
    topicMetrics: (f: Filters) =>
      request<TopicMetrics>(`/api/v1/metrics/topics${windowQuery({ ...f, topic: undefined })}`),
    /** A page of stored posts that a query (the topics language) matches, with the search's filters. */
    search: (f: SearchFilters, page: PageRequest, signal?: AbortSignal) =>
      request<SearchPage>(`/api/v1/search${query(searchPageParams(f, page))}`, { signal }),
    /**
     * Every post the search matches, as a file (read whole: the export needs the bearer token,
     * which a plain link cannot carry). A body the server ended early rejects.
     */
    exportSearch: async (f: SearchFilters, format: ExportFormat, signal?: AbortSignal): Promise<Blob> =>
      (await respond(`/api/v1/search/export${query(exportParams(f, format))}`, { signal })).blob(),
    /** Starts an export job of the search: any process writes it, and its link needs no key. */
    createExport: (f: SearchFilters, format: ExportFormat) =>
      request<ExportJob>(`/api/v1/exports${query(exportParams(f, format))}`, { method: "POST" }),
    exportJob: (id: number, signal?: AbortSignal) => request<ExportJob>(`/api/v1/exports/${id}`, { signal }),
    /** Cancels a queued or running job, or removes a finished one's file. */
    deleteExport: (id: number) => request<void>(`/api/v1/exports/${id}`, { method: "DELETE" }),
    /** Every saved search, by name. */
    savedSearches: () => request<SavedSearchList>(`/api/v1/saved-searches`),
    /** Editors and admins. */
    saveSearch: (s: NewSavedSearch) => request<SavedSearch>(`/api/v1/saved-searches`, json("POST", s)),
    deleteSavedSearch: (id: number) => request<void>(`/api/v1/saved-searches/${id}`, { method: "DELETE" }),
    /** The caller's saved views and the shared ones. */
    views: () => request<ViewList>(`/api/v1/views`),
    view: (id: number) => request<SavedView>(`/api/v1/views/${id}`),
    saveView: (v: NewView) => request<SavedView>(`/api/v1/views`, json("POST", v)),
    /** Its owner (or an admin) only. */
    updateView: (id: number, v: NewView) => request<SavedView>(`/api/v1/views/${id}`, json("PUT", v)),
    deleteView: (id: number) => request<void>(`/api/v1/views/${id}`, { method: "DELETE" }),
    digestSchedules: () => request<DigestScheduleList>(`/api/v1/digests/schedules`),
    /** Editors and admins. */
    createDigestSchedule: (s: NewDigestSchedule) => request<DigestSchedule>(`/api/v1/digests/schedules`, json("POST", s)),
    updateDigestSchedule: (id: number, patch: { enabled?: boolean; view?: number | null }) =>
      request<DigestSchedule>(`/api/v1/digests/schedules/${id}`, json("PATCH", patch)),
    deleteDigestSchedule: (id: number) => request<void>(`/api/v1/digests/schedules/${id}`, { method: "DELETE" }),
    sendDigestNow: (id: number) => request<SentNow>(`/api/v1/digests/schedules/${id}/send`, { method: "POST" }),
    /** The digest of a period, as it would be sent; nothing is sent. */
    previewDigest: (scope: DigestScopeInput, from: string, to: string, signal?: AbortSignal) =>
      request<DigestPreview>(`/api/v1/digests/preview`, json("POST", { scope, from, to }, signal)),
    /** The next posts to review, claimed for the caller (editors and admins). */
    reviewNext: (topic: number | undefined, count: number) =>
      request<ReviewBatch>(`/api/v1/review/next`, json("POST", topic === undefined ? { count } : { topic_id: topic, count })),
    /** Labels a post (editors and admins). */
    label: (l: NewLabel) => request<Label>(`/api/v1/labels`, json("POST", l)),
    /** Undoes a label: kept, marked undone (its reviewer or an admin). */
    undoLabel: (id: number) => request<Label>(`/api/v1/labels/${id}`, { method: "DELETE" }),
    labels: (postId: string) => request<LabelPage>(`/api/v1/labels${query({ post_id: postId })}`),
    /** A topic's learned relevance. */
    relevance: (topic: number) => request<Relevance>(`/api/v1/topics/${topic}/relevance`),
    /** The sentiment calibration in use and those trained. */
    calibration: () => request<CalibrationState>(`/api/v1/calibration`),
    /** Puts a calibration in use, or none (the shipped models); admins. */
    chooseCalibration: (activeId: number | null, automatic: boolean) =>
      request<CalibrationState>(`/api/v1/calibration`, json("PUT", { active_id: activeId, automatic })),
    /** The reach forecast of one draft (nothing is stored). */
    forecast: (draft: Draft) =>
      request<ForecastResponse>(`/api/v1/forecast`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ posts: [draft] }),
      }),
  };
}

/** Samples of each kind a topic preview asks for: the panel shows three. */
export const PREVIEW_SAMPLES = 3;

/** A topic to create, as `POST /api/v1/topics` takes it. */
export interface NewTopic {
  name: string;
  query: string;
  status?: Topic["status"];
}

/** The fields of a topic to change (`PATCH /api/v1/topics/{id}`); absent ones keep their value. */
export type TopicPatch = Partial<NewTopic>;

/** A search to save, as `POST /api/v1/saved-searches` takes it. */
export interface NewSavedSearch {
  name: string;
  query: string;
  filters: SavedFilters;
}

/** A label, as `POST /api/v1/labels` takes it. */
export interface NewLabel {
  post_id: string;
  topic_id?: number;
  kind: LabelKind;
  value: string;
}

/** A view to save, as `POST /api/v1/views` takes it. */
export interface NewView {
  name: string;
  state: ViewState;
  shared: boolean;
}

/** What a digest is about: every post, or one topic. */
export type DigestScopeInput = "all" | { topic: number };

/** A schedule, as `POST /api/v1/digests/schedules` takes it. */
export interface NewDigestSchedule {
  name: string;
  scope: DigestScopeInput;
  cadence: "daily" | "weekly";
  weekday?: string;
  at: string;
  timezone: string;
  channels: number[];
  view?: number;
}

/** A post to forecast, as `POST /api/v1/forecast` takes it. */
export interface Draft {
  text: string;
  platform: string;
  author: { id: string; followers?: number };
  /** Language tag (`de`, `pt-BR`); detected from the text when absent. */
  lang?: string;
}

/** The page's REST API, signed in through the page's session. */
export const api = createApi(session);

/** The narrowest bucket that draws the period in at most 1,500 buckets. */
export function periodBucket(since: string, until: string): "1m" | "5m" | "1h" {
  const minutes = (Date.parse(until) - Date.parse(since)) / 60_000;
  return minutes <= 1500 ? "1m" : minutes <= 7500 ? "5m" : "1h";
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** The window, or the fixed period (`since`, `until`) that replaces it, and the label filters. */
function windowQuery(f: Filters): string {
  const span = f.since && f.until ? { from: f.since, to: f.until } : { window: f.window };
  return query({ ...span, ...labelFilters(f) });
}
