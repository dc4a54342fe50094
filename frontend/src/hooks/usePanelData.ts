import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import type { SubscribeFilter } from "../api/schemas";
import { trendScope, type Filters } from "../lib/filters";
import { MAX_VIRAL } from "../state/live";

/**
 * Every REST query the panels show, each polled at the rate its figures change. `admin`: the
 * alert channels are asked for only then, and a 403 (a role changed under the session) stops
 * their polling.
 */
export function usePanelData(filters: Filters, wsFilter: SubscribeFilter, admin: boolean) {
  const q = { placeholderData: keepPreviousData, retry: 1 } as const;
  const overall = useQuery({ queryKey: ["overall", filters], queryFn: () => api.overall(filters), refetchInterval: 2000, ...q });
  const series = useQuery({ queryKey: ["timeseries", trendScope(filters), filters.since, filters.until], queryFn: () => api.timeseries(filters), refetchInterval: 1000, ...q });
  const platforms = useQuery({ queryKey: ["platforms", filters], queryFn: () => api.platforms(filters), refetchInterval: 5000, ...q });
  const products = useQuery({ queryKey: ["products", filters], queryFn: () => api.products(filters), refetchInterval: 5000, ...q });
  const channels = useQuery({ queryKey: ["channels", filters], queryFn: () => api.channels(filters), refetchInterval: 5000, ...q });
  const languages = useQuery({ queryKey: ["languages", filters], queryFn: () => api.languages(filters), refetchInterval: 5000, ...q });
  const geo = useQuery({ queryKey: ["geo", filters], queryFn: () => api.geo(filters), refetchInterval: 5000, ...q });
  const terms = useQuery({ queryKey: ["terms", filters.window, filters.topic], queryFn: () => api.terms(filters), refetchInterval: 10_000, ...q });
  const trending = useQuery({ queryKey: ["trending-posts", wsFilter], queryFn: () => api.trendingPosts(filters, MAX_VIRAL), refetchInterval: 5000, ...q });
  const stories = useQuery({ queryKey: ["stories", wsFilter], queryFn: () => api.stories(filters, 8), refetchInterval: 3000, ...q });
  const pipeline = useQuery({ queryKey: ["pipeline"], queryFn: api.pipeline, refetchInterval: 2000, ...q });
  const posts = useQuery({ queryKey: ["posts", wsFilter], queryFn: () => api.posts(filters), staleTime: Infinity });
  const alerts = useQuery({ queryKey: ["alerts"], queryFn: api.alerts, refetchInterval: 30_000 });
  // Topics change rarely and the panel refetches after its own writes.
  const topics = useQuery({ queryKey: ["topics"], queryFn: api.topics, refetchInterval: 30_000, ...q });
  // Topics compared on the same posts: every filter but the topic itself.
  const topicMetrics = useQuery({
    queryKey: ["topic-metrics", { ...filters, topic: undefined }],
    queryFn: () => api.topicMetrics(filters),
    refetchInterval: 5000,
    ...q,
  });
  const channelList = useQuery({
    queryKey: ["alert-channels"],
    queryFn: api.channelList,
    enabled: admin,
    refetchInterval: (query) => (query.state.error instanceof ApiError && query.state.error.status === 403 ? false : 15_000),
    retry: false,
  });
  const channelsForbidden = !admin || (channelList.error instanceof ApiError && channelList.error.status === 403);
  return {
    overall, series, platforms, products, channels, languages, geo, terms, trending, stories, pipeline, posts, alerts, topics, topicMetrics,
    channelList, channelsForbidden,
  };
}
