// Schemas of every REST and WebSocket payload the dashboard reads, mirroring the Rust types
// that produce them (src/http/*.rs, src/ws/protocol.rs). The TypeScript types are inferred
// from these schemas, and the contract test (src/api/contract.test.ts) parses payloads that a
// real Pulse produced with them in strict mode, so a field added, removed or retyped on
// either side fails the test suite instead of drifting silently.
import { z } from "zod";
import { platforms, windows } from "./constants";

// Zod compiles fast object parsers with `new Function` after probing whether it may; the
// dashboard's Content-Security-Policy forbids eval, and the probe alone is reported as a
// violation. Live messages are few per flush, so the interpreted parser costs nothing.
z.config({ jitless: true });

const time = z.string().datetime({ offset: true });
const count = z.number().int();

export { platforms, windows };
export const Platform = z.enum(platforms);
export const SentimentLabel = z.enum(["negative", "neutral", "positive"]);
export const Window = z.enum(windows);
export const EmotionName = z.enum(["anger", "joy", "optimism", "sadness"]);

/** `Stats` in src/http/api/metrics.rs. */
export const Stats = z.strictObject({
  posts: count,
  sentiment: z.strictObject({
    mean: z.number(),
    negative: count,
    neutral: count,
    positive: count,
    negative_share: z.number(),
    neutral_share: z.number(),
    positive_share: z.number(),
  }),
  toxicity_mean: z.number(),
  churn: z.strictObject({ mean: z.number(), high: count, high_share: z.number() }),
  emotions: z.strictObject({ anger: count, joy: count, optimism: count, sadness: count }),
  engagement: z.strictObject({ likes: count, shares: count, comments: count, views: count }),
});

/** `KeyedStats`: `Stats` flattened with the dimension's key. */
export const KeyedStats = Stats.extend({ key: z.string() });

export const ShareOfVoice = z.strictObject({
  volume: z.number(),
  positive: z.number(),
  negative: z.number(),
});
export const ProductStats = KeyedStats.extend({ share_of_voice: ShareOfVoice });
/** `TopicStats`: a topic's id and name with `Stats` flattened and its share of the topics' voice. */
export const TopicStats = Stats.extend({ id: count, name: z.string(), share_of_voice: ShareOfVoice });

const windowed = { window: Window, from: time, to: time };

/** `GET /api/v1/metrics/overall`. */
export const OverallResponse = z.strictObject({ ...windowed, stats: Stats });
/** `GET /api/v1/metrics/platforms` and `/channels`. */
export const ItemsResponse = z.strictObject({ ...windowed, items: z.array(KeyedStats) });
/** `GET /api/v1/metrics/languages`. */
export const LanguagesResponse = z.strictObject({
  ...windowed,
  languages: z.array(KeyedStats),
  support: z.array(KeyedStats),
});
/** `GET /api/v1/metrics/products`. */
export const ProductsResponse = z.strictObject({ ...windowed, items: z.array(ProductStats) });
/** `GET /api/v1/metrics/topics`: every live topic, most posts first. */
export const TopicMetrics = z.strictObject({ ...windowed, items: z.array(TopicStats) });
/** `GET /api/v1/metrics/geo`. */
export const GeoResponse = z.strictObject({
  ...windowed,
  cities: z.array(KeyedStats),
  countries: z.array(KeyedStats),
});
/** `GET /api/v1/metrics/timeseries`. */
export const TimeseriesResponse = z.strictObject({
  dimension: z.enum(["overall", "platform", "city", "country", "product", "channel", "language", "support", "topic"]),
  key: z.string(),
  from: time,
  to: time,
  bucket: z.enum(["1m", "5m", "1h"]),
  points: z.array(Stats.extend({ at: time })),
});
/** `GET /api/v1/trending/terms`. */
export const TermsResponse = z.strictObject({
  ...windowed,
  terms: z.array(
    z.strictObject({ term: z.string(), hashtag: z.boolean(), posts: count, sentiment_mean: z.number() }),
  ),
});

/** `PostView` in src/http/api/posts.rs: `GET /api/v1/posts/{id}` and `message:new` data. */
export const Post = z.strictObject({
  id: z.string(),
  platform: Platform,
  author: z.strictObject({ id: z.string(), followers: count }),
  text: z.string(),
  created_at: time,
  lang: z.string().nullable(),
  geo: z.strictObject({ city: z.string().nullable(), country: z.string().nullable() }),
  product: z.string().nullable(),
  channel: z.string().nullable(),
  parent_id: z.string().nullable(),
  url: z.string().nullable(),
  metrics: z
    .strictObject({
      likes: count,
      shares: count.nullable(),
      comments: count.nullable(),
      views: count.nullable(),
    })
    .nullable(),
  analysis: z.strictObject({
    sentiment: z.strictObject({ label: SentimentLabel, score: z.number() }),
    emotions: z.strictObject({
      anger: z.number(),
      joy: z.number(),
      optimism: z.number(),
      sadness: z.number(),
    }),
    emotion: EmotionName.nullable(),
    toxicity: z.number(),
    hate: z.number(),
    churn_risk: z.number(),
    model: z.string(),
    lang_source: z.enum(["given", "detected", "unsure", "unknown"]),
    language_support: z.enum(["supported", "unverified", "unsupported"]),
  }),
  /** The story the post belongs to; null while it is in none. */
  story_id: z.number().int().nullable(),
  /** The topics the post matched, by id (ascending; `[]` for none). */
  topics: z.array(count),
  /** The version of each topic's query that matched, in the order of `topics`. */
  topic_versions: z.array(count),
  /** Topics its query matched that their relevance (a reviewer's label or the learned filter)
   * left out: listed as filtered, counted in none of their figures. */
  filtered_topics: z.array(count),
  ingested_at: time,
  /** When the platform deleted the post (only present on a deleted post). */
  deleted_at: time.optional(),
});
/** `GET /api/v1/posts`. */
export const PostsPage = z.strictObject({ items: z.array(Post), next_cursor: z.string().nullable() });

/** A topic (`TopicView` in crates/core/src/models/topic.rs): a name and a query a team listens for (docs/topics.md). */
export const Topic = z.strictObject({
  id: count,
  name: z.string(),
  query: z.string(),
  /** 1 when created, one more at every edit of the query. */
  version: count,
  status: z.enum(["active", "paused"]),
  created_at: time,
  updated_at: time,
  created_by: z.string().nullable(),
});
/** `GET /api/v1/topics`: a page of live topics, by id; `next_after` is the next page's `after`. */
export const TopicList = z.strictObject({ items: z.array(Topic), next_after: z.number().int().nullable() });
/** Posts of a preview (`PreviewPosts` in src/http/api/topics/mod.rs): how many, and the newest. */
const PreviewPosts = z.strictObject({ count, per_hour: z.number(), samples: z.array(Post) });
/** `POST /api/v1/topic-preview`: what a query matches among recent stored posts. */
export const TopicPreview = z.strictObject({
  from: time,
  to: time,
  scanned: count,
  /** Whether every post of the stretch was read (else `from` is where reading stopped). */
  complete: z.boolean(),
  matches: PreviewPosts,
  /** Posts holding the query's words that a `NOT` or a field left out. */
  near_misses: PreviewPosts,
});

/** A search hit (`SearchHit` in src/http/api/search/mod.rs): a post and where the query's words stand in it. */
export const SearchHit = z.strictObject({
  post: Post,
  /** `[start, end)` in `post.text`, in Unicode code points (not UTF-16 units), sorted, not overlapping. */
  highlights: z.array(z.tuple([count, count])),
  /** The relevance score, with `order=relevance` only. */
  score: z.number().optional(),
});
/** A count under one key of a facet. */
export const FacetCount = z.strictObject({ key: z.string(), count });
/** `SearchFacets`: counts of every post a search matches, not only the page's. */
export const SearchFacets = z.strictObject({
  total: count,
  sentiment: z.array(FacetCount),
  platform: z.array(FacetCount),
  /** By language code; `und` for posts without one. */
  lang: z.array(FacetCount),
  product: z.array(FacetCount),
  /** By topic id, written as a string. */
  topic: z.array(FacetCount),
  interval: z.enum(["hour", "day"]),
  /** The non-empty buckets, oldest first, each the start of its hour or day (UTC). */
  buckets: z.array(z.strictObject({ at: time, count })),
  /** Present when the counts are estimates, scaled up from the matches in `share` of the store. */
  sample: z.strictObject({ share: z.number().gt(0).lte(1), posts: count }).optional(),
});
/** `GET /api/v1/search` (`SearchPage`): a page of hits, with facets on request. */
export const SearchPage = z.strictObject({
  items: z.array(SearchHit),
  /** Null on the last page; a page may hold fewer than `limit` hits and still have a next one. */
  next_cursor: z.string().nullable(),
  /** Posts checked against the query one by one for this page. */
  checked: count,
  facets: SearchFacets.optional(),
});
/** A saved search (`SavedSearch` in crates/core/src/db/saved_searches.rs): a query and its filters under a name. */
export const SavedSearch = z.strictObject({
  id: count,
  name: z.string(),
  query: z.string(),
  /** The search's parameters by name (`platform`, `lang`, `from`, `order`...): strings, `topic` a number. */
  filters: z.record(z.string(), z.union([z.string(), z.number()])),
  created_by: z.string().nullable(),
  created_at: time,
  updated_at: time,
});
/** `GET /api/v1/saved-searches`: every saved search, by name. */
export const SavedSearchList = z.strictObject({ items: z.array(SavedSearch) });
/** A saved view's state (`ViewState` in src/http/api/views.rs): the dashboard's URL state. */
export const ViewState = z.strictObject({
  topic: count.optional(),
  filters: z.strictObject({
    platform: z.string().optional(),
    product: z.string().optional(),
    channel: z.string().optional(),
    country: z.string().optional(),
    city: z.string().optional(),
  }),
  window: z.enum(["1m", "5m", "1h", "24h"]).optional(),
  from: time.optional(),
  to: time.optional(),
  panels: z.array(z.string()),
});
/** A saved view (`SavedView` in crates/core/src/db/saved_views.rs). */
export const SavedView = z.strictObject({
  id: count,
  name: z.string(),
  state: ViewState,
  owner: z.string(),
  shared: z.boolean(),
  /** Whether the caller may change and delete it. */
  editable: z.boolean(),
  created_at: time,
  updated_at: time,
});
/** `GET /api/v1/views`: the caller's views and the shared ones, by name. */
export const ViewList = z.strictObject({ items: z.array(SavedView) });

export const LabelKind = z.enum(["relevance", "sentiment", "spam", "tag", "note"]);
/** A reviewer's label on a post (`Label` in crates/core/src/models/label.rs). */
export const Label = z.strictObject({
  id: count,
  post_id: z.string(),
  topic_id: count.nullable(),
  kind: LabelKind,
  value: z.string(),
  reviewer: z.string(),
  created_at: time,
  undone_at: time.nullable(),
  undone_by: z.string().nullable(),
});
/** `GET /api/v1/labels`. */
export const LabelPage = z.strictObject({ items: z.array(Label), next_after: count.nullable() });
/** A post the review queue hands out, with why and the labels that count on it. */
export const ReviewItem = z.strictObject({
  post: Post,
  reason: z.enum(["uncertain_relevance", "sample", "alert_evidence", "model_lexicon_disagree", "low_confidence"]),
  relevance: z.number().nullable(),
  lexicon_sentiment: SentimentLabel.nullable(),
  labels: z.array(Label),
});
/** `POST /api/v1/review/next`. */
export const ReviewBatch = z.strictObject({ items: z.array(ReviewItem), claimed_until: time });
/** A relevance model a topic trained (`ModelRecord` in crates/core/src/db/relevance.rs). */
export const RelevanceModel = z.strictObject({
  id: count,
  topic_id: count,
  labels: count,
  related: count,
  through_label: count,
  accuracy: z.number(),
  incumbent: z.number(),
  adopted: z.boolean(),
  reason: z.string(),
  created_at: time,
});
/** `GET /api/v1/topics/{id}/relevance`. */
export const Relevance = z.strictObject({
  topic_id: count,
  threshold: z.number(),
  model_id: count.nullable(),
  related: count,
  unrelated: count,
  kept_posts: count,
  filtered_posts: count,
  waiting_for: z.string().nullable(),
  models: z.array(RelevanceModel),
});
/** A sentiment calibration trained from reviewers' labels (`CalibrationRecord`). */
export const CalibrationRecord = z.strictObject({
  id: count,
  labels: count,
  through_label: count,
  macro_recall: z.number(),
  shipped: z.number(),
  better: z.boolean(),
  reason: z.string(),
  models: z.array(z.string()),
  created_at: time,
});
/** `GET`, `PUT /api/v1/calibration`. */
export const CalibrationState = z.strictObject({
  active_id: count.nullable(),
  automatic: z.boolean(),
  pending_changes: z.number().int(),
  updated_at: time,
  updated_by: z.string().nullable(),
  calibrations: z.array(CalibrationRecord),
});

/** A digest schedule (`Schedule` in crates/core/src/db/digests.rs). */
export const DigestSchedule = z.strictObject({
  id: count,
  name: z.string(),
  topic: count.nullable(),
  cadence: z.enum(["daily", "weekly"]),
  weekday: z.number().int().min(1).max(7).nullable(),
  at: z.string(),
  timezone: z.string(),
  channels: z.array(count),
  view: count.nullable(),
  enabled: z.boolean(),
  created_by: z.string().nullable(),
  created_at: time,
});
/** `GET /api/v1/digests/schedules`. */
export const DigestScheduleList = z.strictObject({ items: z.array(DigestSchedule) });
/**
 * `POST /api/v1/digests/preview`: the digest's figures (only those the page shows are named
 * here; the rest pass) and its rendered forms.
 */
export const DigestPreview = z.looseObject({
  scope: z.strictObject({ topic: count.nullable(), name: z.string() }),
  from: time,
  to: time,
  posts: count,
  negative_share: z.number(),
  link: z.string(),
  late: z.boolean(),
  rendered: z.strictObject({
    subject: z.string(),
    text: z.string(),
    html: z.string(),
    slack: z.record(z.string(), z.unknown()),
    teams: z.record(z.string(), z.unknown()),
    chart_png: z.string(),
  }),
});
/** `POST /api/v1/digests/schedules/{id}/send`. */
export const SentNow = z.strictObject({ from: time, to: time, posts: count, negative_share: z.number() });
/** An export job (`ExportJob` in src/http/api/exports/mod.rs): a search written to a file in the background. */
export const ExportJob = z.strictObject({
  id: count,
  state: z.enum(["queued", "running", "done", "failed"]),
  format: z.enum(["csv", "jsonl"]),
  /** The search exported, as `GET /api/v1/search` takes it. */
  search: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  rows: count,
  bytes: count,
  /** Share of the search's time range written, 0 to 1. */
  progress: z.number().min(0).max(1),
  created_at: time,
  finished_at: time.nullable(),
  expires_at: time.nullable(),
  error: z.string().nullable(),
  /** The file, without a key, until `expires_at` (done jobs only). */
  download_url: z.string().nullable(),
});
/** `GET /api/v1/exports`: the caller's newest jobs. */
export const ExportJobList = z.strictObject({ items: z.array(ExportJob) });

/** An alert: `GET /api/v1/alerts` items, ack/resolve answers and `alert:<kind>` data. */
export const Alert = z.strictObject({
  id: count,
  rule_id: count.nullable(),
  rule_name: z.string(),
  kind: z.string(),
  severity: z.enum(["info", "warning", "critical"]),
  dimension: z.string(),
  key: z.string(),
  status: z.enum(["firing", "acknowledged", "resolved"]),
  value: z.number(),
  threshold: z.number(),
  evidence: z.record(z.string(), z.unknown()),
  fired_at: time,
  // The live message is sent as the alert fires, before these can exist.
  acknowledged_at: time.nullable().optional(),
  resolved_at: time.nullable().optional(),
});
/** `GET /api/v1/alerts`. */
export const AlertsPage = z.strictObject({ items: z.array(Alert), next_before: count.nullable() });

/** `Webhook` in crates/core/src/models/webhooks.rs: an alert channel as `GET /api/v1/webhooks` lists it. */
export const Channel = z.strictObject({
  id: count,
  kind: z.enum(["webhook", "slack", "teams", "pagerduty", "email"]),
  name: z.string(),
  min_severity: z.enum(["info", "warning", "critical"]),
  quiet_hours: z.strictObject({ from: z.string(), to: z.string(), timezone: z.string().nullable().optional() }).nullable(),
  // Until when the channel sends nothing (its receiver asked for a wait); null when not held.
  held_until: time.nullable(),
  last_delivery: z
    .strictObject({
      alert_id: count.nullable(),
      digest_id: count.nullable(),
      event: z.enum(["fire", "resolve", "digest"]),
      status: z.enum(["pending", "delivered", "dead"]),
      attempts: count,
      last_status: count.nullable(),
      last_error: z.string().nullable(),
      at: time,
    })
    .nullable(),
  url: z.string(),
  kinds: z.array(z.string()).nullable(),
  enabled: z.boolean(),
  created_at: time,
});
/** `GET /api/v1/webhooks`. */
export const ChannelList = z.strictObject({ items: z.array(Channel) });
/** `POST /api/v1/webhooks/{id}/test`. */
export const TestOutcome = z.strictObject({ delivered: z.boolean(), status: count.nullable(), error: z.string().nullable() });

/** `GroupStats` in crates/core/src/streams/group.rs. */
export const GroupStats = z.strictObject({
  lag: count.nullable(),
  pending: count,
  consumers: count,
  length: count,
  dead_letters: count,
  /** Seconds the oldest entry not yet acknowledged has waited; null when Redis cannot tell. */
  oldest_age_secs: z.number().nullable(),
  /** Bytes the stream holds in Redis; null when Redis does not answer `MEMORY USAGE`. */
  stream_bytes: count.nullable(),
  /** Consumers that read within the last 30 s: the processes there are now. */
  live_consumers: count.nullable(),
});
/** `GET /api/v1/pipeline` (src/http/api/pipeline.rs). */
export const PipelineResponse = z.strictObject({
  at: time,
  window_secs: count,
  posts: count,
  posts_per_sec: z.number(),
  models: z.array(z.strictObject({ model: z.string(), posts: count })),
  consumer_group: GroupStats.nullable(),
  /** This process's consumer name in the group. */
  consumer: z.string(),
  in_flight: count,
  /** The sources this process runs (src/sources/mod.rs `SourceState`). */
  sources: z.array(
    z.strictObject({
      name: z.string(),
      kind: z.string(),
      connected: z.boolean(),
      lag_seconds: z.number().nullable(),
      last_error: z.string().nullable(),
      /** Times since start the source knew it missed records it could not read back. */
      gaps: count,
      last_gap: z
        .strictObject({ at: time, reason: z.string(), after: z.string().nullable() })
        .nullable(),
    }),
  ),
  /** Events a second shared between HTTP producers while the group is behind, else null. */
  sharing_per_sec: z.number().nullable(),
  /** Each producer appending over HTTP to this process (src/http/api/events/fair_share.rs). */
  producers: z.array(
    z.strictObject({
      producer: z.string(),
      asked_per_sec: z.number(),
      admitted_per_sec: z.number(),
      share_per_sec: z.number().nullable(),
      share_of_admitted: z.number(),
      refused: count,
      told_wait_secs: z.number().nullable(),
      /** What the producer's key may send (crates/core/src/models/key_scope.rs); null: anything. */
      scope: z
        .strictObject({
          platforms: z.array(z.string()),
          products: z.array(z.string()),
          id_prefixes: z.array(z.string()),
          /** Present when the stored scope cannot be read here: the key admits nothing. */
          unreadable: z.literal(true).optional(),
        })
        .nullable(),
    }),
  ),
  /** How long each producer's entries waited from append to commit here, last minute or two. */
  waits: z.array(
    z.strictObject({
      producer: z.string(),
      entries: count,
      mean_wait_secs: z.number(),
      max_wait_secs: z.number(),
    }),
  ),
  /** This process's fingerprint of the settings that decide what becomes of an entry. */
  settings_fingerprint: z.string(),
  /** Each live process of the group and its fingerprint: when they differ, processes decide the same entry differently. */
  group_settings: z.array(z.strictObject({ consumer: z.string(), fingerprint: z.string() })),
});

/** The live metrics snapshot: `metrics:initial` / `metrics:update` data. */
export const MetricsSnapshot = z.strictObject({
  at: time,
  overall: z.strictObject({ "1m": Stats, "5m": Stats, "1h": Stats, "24h": Stats }),
  by_dimension: z.strictObject({
    window: Window,
    items: z.strictObject({
      platform: z.array(KeyedStats),
      product: z.array(KeyedStats),
      channel: z.array(KeyedStats),
      city: z.array(KeyedStats),
      country: z.array(KeyedStats),
    }),
  }),
});

export const Dynamics = z.enum(["deep", "broad", "hybrid"]);

/**
 * A post's virality (`PostVirality` in src/actors/virality.rs): the `virality:update` data.
 * The trending listing adds `updated_at` (`cascade_json` in src/http/virality_api.rs).
 */
export const PostVirality = z.strictObject({
  post_id: z.string(),
  platform: Platform.nullable(),
  product: z.string().nullable(),
  channel: z.string().nullable(),
  city: z.string().nullable(),
  country: z.string().nullable(),
  sentiment: SentimentLabel.nullable(),
  hashtags: z.array(z.string()),
  status: z.enum(["active", "finished"]),
  observed_at: time,
  age_secs: z.number(),
  counts: z.strictObject({ shares: count, likes: count, comments: count, views: count }),
  reach: count,
  structure: z.strictObject({ depth: count, breadth: count, structural_virality: z.number() }),
  momentum: z.strictObject({ velocity: z.number(), acceleration: z.number() }),
  virality_score: z.number(),
  virality_probability: z.number(),
  viral_classification: z.enum(["yes", "no"]),
  confidence_interval: z.strictObject({ lower: z.number(), upper: z.number(), level: z.number() }),
  predicted_final_shares: z.number(),
  threshold: z.number(),
  virality_dynamics: Dynamics,
  model_lineage: z.strictObject({ name: z.string(), version: z.string(), params_hash: z.string() }),
  branching: z.number(),
});
/** An item of `GET /api/v1/trending/posts`: a stored cascade, with when it was written. */
export const TrendingPost = PostVirality.extend({ updated_at: time });
/** `GET /api/v1/trending/posts`. */
export const TrendingPostsResponse = z.strictObject({ items: z.array(TrendingPost) });

/** What a WebSocket session subscribes to (`Topic` in crates/core/src/models/live.rs; not a listening topic). */
export const StreamTopic = z.enum(["posts", "metrics", "alerts", "virality", "stories"]);

/** A story: `GET /api/v1/stories` items (`StorySummary` in crates/core/src/db/stories.rs). */
export const Story = z.strictObject({
  id: z.number().int(),
  label: z.string(),
  terms: z.array(z.string()),
  status: z.enum(["live", "faded", "merged"]),
  merged_into: z.number().int().nullable(),
  born_at: time,
  first_at: time,
  last_at: time,
  size: count,
  recent: count,
});
/** `GET /api/v1/stories`. */
export const StoryList = z.strictObject({ items: z.array(Story) });
/** `story:new` and `story:update` data (`StoryKeeper::announce` in src/actors/stories.rs). */
export const StoryEvent = z.strictObject({
  id: z.number().int(),
  label: z.string(),
  terms: z.array(z.string()),
  /** The terms' weights in the story's centre, relative to the heaviest (same order). */
  weights: z.array(z.number().min(0).max(1)),
  born_at: time,
  first_at: time,
  last_at: time,
  added: count,
});
export const WsFilter = z.strictObject({
  platform: Platform.optional(),
  sentiment: SentimentLabel.optional(),
  product: z.string().optional(),
  city: z.string().optional(),
  country: z.string().optional(),
  channel: z.string().optional(),
  lang: z.string().optional(),
  /** Listening topics' ids: a client may send one as `topic`; the server echoes them here. */
  topics: z.array(count).optional(),
});
/**
 * The filter a client sends (`WireFilter` in src/ws/protocol.rs): as echoed, but a single
 * topic may be named by `topic`, a number (the dashboard's URL keeps it as a string).
 */
export type SubscribeFilter = Omit<WsFilter, "topics"> & { topic?: number; topics?: number[] };

/** Every server → client WebSocket message (src/ws/protocol.rs). */
export const ServerMessage = z.union([
  z.strictObject({ type: z.literal("subscribed"), topics: z.array(StreamTopic), filter: WsFilter }),
  z.strictObject({ type: z.literal("message:new"), data: Post }),
  z.strictObject({ type: z.literal("message:deleted"), data: z.strictObject({ id: z.string(), deleted_at: time }) }),
  z.strictObject({ type: z.enum(["metrics:initial", "metrics:update"]), data: MetricsSnapshot }),
  z.strictObject({ type: z.templateLiteral(["alert:", z.string()]), data: Alert }),
  z.strictObject({ type: z.literal("virality:update"), data: PostVirality }),
  z.strictObject({ type: z.enum(["story:new", "story:update"]), data: StoryEvent }),
  z.strictObject({ type: z.literal("lagged"), dropped: count }),
  z.strictObject({ type: z.literal("pong") }),
  z.strictObject({
    type: z.literal("error"),
    error: z.strictObject({ code: z.string(), message: z.string() }),
  }),
]);

/**
 * A key's role: `ingest` only appends events; the dashboard needs `analyst`, `editor` or
 * `admin`; editors also write topics, admins everything.
 */
export const Role = z.enum(["ingest", "analyst", "editor", "admin"]);
/** `GET /api/v1/auth/status`: whether the server asks for credentials at all. */
export const AuthStatus = z.strictObject({ mode: z.enum(["open", "token"]), token_ttl_secs: count });
/** `POST /api/v1/auth/token`: an API key exchanged for a short-lived bearer token. */
export const TokenResponse = z.strictObject({
  access_token: z.string().min(1),
  token_type: z.literal("Bearer"),
  expires_in: count,
  expires_at: time,
  role: Role,
  key_id: z.string(),
});
/** The API's one error shape (src/http/error.rs), as a refused sign-in answers. */
export const ErrorBody = z.strictObject({
  error: z.strictObject({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) }),
});

export type Stats = z.infer<typeof Stats>;
export type KeyedStats = z.infer<typeof KeyedStats>;
export type ProductStats = z.infer<typeof ProductStats>;
export type TopicStats = z.infer<typeof TopicStats>;
export type TopicMetrics = z.infer<typeof TopicMetrics>;
export type Topic = z.infer<typeof Topic>;
export type TopicList = z.infer<typeof TopicList>;
export type TopicPreview = z.infer<typeof TopicPreview>;
export type OverallResponse = z.infer<typeof OverallResponse>;
export type ItemsResponse = z.infer<typeof ItemsResponse>;
export type LanguagesResponse = z.infer<typeof LanguagesResponse>;
export type ProductsResponse = z.infer<typeof ProductsResponse>;
export type GeoResponse = z.infer<typeof GeoResponse>;
export type TimeseriesResponse = z.infer<typeof TimeseriesResponse>;
export type TermsResponse = z.infer<typeof TermsResponse>;
export type Post = z.infer<typeof Post>;
export type PostsPage = z.infer<typeof PostsPage>;
export type Alert = z.infer<typeof Alert>;
export type AlertsPage = z.infer<typeof AlertsPage>;
export type PipelineResponse = z.infer<typeof PipelineResponse>;
export type Channel = z.infer<typeof Channel>;
export type ChannelList = z.infer<typeof ChannelList>;
export type TestOutcome = z.infer<typeof TestOutcome>;
export type MetricsSnapshot = z.infer<typeof MetricsSnapshot>;
export type PostVirality = z.infer<typeof PostVirality>;
export type TrendingPost = z.infer<typeof TrendingPost>;
export type TrendingPostsResponse = z.infer<typeof TrendingPostsResponse>;
export type Dynamics = z.infer<typeof Dynamics>;
export type ServerMessage = z.infer<typeof ServerMessage>;
export type Story = z.infer<typeof Story>;
export type StoryList = z.infer<typeof StoryList>;
export type WsFilter = z.infer<typeof WsFilter>;
export type Platform = z.infer<typeof Platform>;
export type Window = z.infer<typeof Window>;
export type Role = z.infer<typeof Role>;
export type AuthStatus = z.infer<typeof AuthStatus>;
export type TokenResponse = z.infer<typeof TokenResponse>;
export type ErrorBody = z.infer<typeof ErrorBody>;
export type SearchHit = z.infer<typeof SearchHit>;
export type FacetCount = z.infer<typeof FacetCount>;
export type SearchFacets = z.infer<typeof SearchFacets>;
export type SearchPage = z.infer<typeof SearchPage>;
export type SavedSearch = z.infer<typeof SavedSearch>;
export type SavedSearchList = z.infer<typeof SavedSearchList>;
export type ViewState = z.infer<typeof ViewState>;
export type SavedView = z.infer<typeof SavedView>;
export type ViewList = z.infer<typeof ViewList>;
export type LabelKind = z.infer<typeof LabelKind>;
export type Label = z.infer<typeof Label>;
export type LabelPage = z.infer<typeof LabelPage>;
export type ReviewItem = z.infer<typeof ReviewItem>;
export type ReviewBatch = z.infer<typeof ReviewBatch>;
export type Relevance = z.infer<typeof Relevance>;
export type CalibrationState = z.infer<typeof CalibrationState>;
export type DigestSchedule = z.infer<typeof DigestSchedule>;
export type DigestScheduleList = z.infer<typeof DigestScheduleList>;
export type DigestPreview = z.infer<typeof DigestPreview>;
export type SentNow = z.infer<typeof SentNow>;
export type ExportJob = z.infer<typeof ExportJob>;
export type ExportJobList = z.infer<typeof ExportJobList>;

/** One group of a forecast's inputs, with the factor it multiplied the expected shares by. */
export const ForecastDriver = z.strictObject({
  group: z.string(),
  factor: z.number(),
  spearman_loss_without: z.number().nullable(),
});
export const PostForecast = z.strictObject({
  model: z.string(),
  expected_shares: z.number(),
  interval: z.strictObject({ low: z.number(), high: z.number(), level: z.number() }),
  percentile: z.number().nullable(),
  percentile_among: z.number().int(),
  viral_probability: z.number(),
  viral_threshold_shares: z.number(),
  score: z.number().int(),
  author: z.strictObject({ cascades: z.number().int(), typical_shares: z.number().nullable(), new_author: z.boolean() }),
  drivers: z.array(ForecastDriver),
  sentiment: z.strictObject({ label: SentimentLabel, score: z.number() }),
  emotion: EmotionName.nullable(),
  lang: z.string().nullable(),
});
export const ForecastResponse = z.strictObject({
  model: z.strictObject({ id: z.string(), version: z.string(), data: z.string(), analyzer: z.string().nullable() }),
  forecasts: z.array(PostForecast),
});
export type ForecastDriver = z.infer<typeof ForecastDriver>;
export type PostForecast = z.infer<typeof PostForecast>;
export type ForecastResponse = z.infer<typeof ForecastResponse>;

/** Which schema checks which REST path, for the contract test. */
export const restSchemas = {
  "metrics/overall": OverallResponse,
  "metrics/platforms": ItemsResponse,
  "metrics/channels": ItemsResponse,
  "metrics/languages": LanguagesResponse,
  "metrics/products": ProductsResponse,
  "metrics/geo": GeoResponse,
  "metrics/timeseries": TimeseriesResponse,
  "metrics/topics": TopicMetrics,
  "trending/terms": TermsResponse,
  "trending/posts": TrendingPostsResponse,
  stories: StoryList,
  posts: PostsPage,
  post: Post,
  topics: TopicList,
  "topic-preview": TopicPreview,
  alerts: AlertsPage,
  "alert-ack": Alert,
  pipeline: PipelineResponse,
  webhooks: ChannelList,
  "webhook-test": TestOutcome,
  "auth/status": AuthStatus,
  "auth/token": TokenResponse,
  "auth/refused": ErrorBody,
  forecast: ForecastResponse,
  search: SearchPage,
  /** A query that does not parse, refused with its position. */
  "search/refused": ErrorBody,
  "saved-searches": SavedSearchList,
  /** `POST /api/v1/saved-searches`: the search as saved. */
  "saved-search": SavedSearch,
  views: ViewList,
  /** `POST /api/v1/views`: the view as saved. */
  view: SavedView,
  "digest-schedules": DigestScheduleList,
  "digest-preview": DigestPreview,
  "review-next": ReviewBatch,
  /** `POST /api/v1/labels`: the label as stored. */
  label: Label,
  labels: LabelPage,
  relevance: Relevance,
  calibration: CalibrationState,
  /** `POST /api/v1/exports`: the job as queued. */
  "export-job": ExportJob,
  "export-jobs": ExportJobList,
} as const;
