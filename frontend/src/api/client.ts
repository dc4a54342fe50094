// REST calls. Responses are typed by the schemas in ./schemas, which the contract test checks
// against what the server really sends; they are not re-validated at run time.
import type {
  Alert, AlertsPage, GeoResponse, ItemsResponse, OverallResponse, PipelineResponse,
  PostsPage, ProductsResponse, TermsResponse, TimeseriesResponse, TrendingPostsResponse,
} from "./schemas";
import { labelFilters, trendScope, type Filters } from "../lib/filters";

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, init);
  if (!res.ok) {
    let code = "http_error";
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      /* not the API's error shape */
    }
    throw new ApiError(res.status, code, message);
  }
  return res.json() as Promise<T>;
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

function windowQuery(f: Filters): string {
  return query({ window: f.window, ...labelFilters(f) });
}

export const api = {
  overall: (f: Filters) => request<OverallResponse>(`/api/v1/metrics/overall${windowQuery(f)}`),
  platforms: (f: Filters) => request<ItemsResponse>(`/api/v1/metrics/platforms${windowQuery(f)}`),
  channels: (f: Filters) => request<ItemsResponse>(`/api/v1/metrics/channels${windowQuery(f)}`),
  products: (f: Filters) => request<ProductsResponse>(`/api/v1/metrics/products${windowQuery(f)}`),
  geo: (f: Filters) => request<GeoResponse>(`/api/v1/metrics/geo${windowQuery(f)}`),
  timeseries: (f: Filters) => {
    const scope = trendScope(f);
    return request<TimeseriesResponse>(
      `/api/v1/metrics/timeseries${query({ dimension: scope.dimension, key: scope.key, bucket: "1m" })}`,
    );
  },
  terms: (f: Filters) => request<TermsResponse>(`/api/v1/trending/terms${query({ window: f.window === "1m" ? "5m" : f.window, limit: 12 })}`),
  /** Active cascades by virality score, with the label filters (the listing has no window). */
  trendingPosts: (f: Filters, limit: number) =>
    request<TrendingPostsResponse>(`/api/v1/trending/posts${query({ limit, ...labelFilters(f) })}`),
  posts: (f: Filters) => request<PostsPage>(`/api/v1/posts${query({ limit: 50, ...labelFilters(f) })}`),
  alerts: () => request<AlertsPage>(`/api/v1/alerts${query({ limit: 50 })}`),
  acknowledge: (id: number) => request<Alert>(`/api/v1/alerts/${id}/ack`, { method: "POST" }),
  pipeline: () => request<PipelineResponse>(`/api/v1/pipeline`),
};
