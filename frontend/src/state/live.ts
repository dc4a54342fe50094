// The live part of the dashboard: what the WebSocket brought, folded in batches. Pure
// functions, so bursts, pauses and reconnects are unit-tested without a browser.
import type { Alert, MetricsSnapshot, Post } from "../api/schemas";

/** Posts the stream shows (and keeps while paused). */
export const MAX_POSTS = 50;
/** Alerts the feed keeps. */
export const MAX_ALERTS = 50;
/** Virality updates the panel keeps. */
export const MAX_VIRAL = 20;

/** A virality update as the panel reads it; the payload is read defensively. */
export interface ViralItem {
  id: string;
  score: number | null;
  low: number | null;
  high: number | null;
  text: string | null;
  platform: string | null;
  at: string;
}

/** Everything one flush of the socket's queue carries. */
export interface Batch {
  /** New posts, oldest first (at most MAX_POSTS: older ones in a burst were never shown). */
  posts: Post[];
  alerts: Alert[];
  viral: ViralItem[];
  /** The latest metrics snapshot of the batch, if any. */
  snapshot: MetricsSnapshot | null;
  /** Messages of every kind the batch held, including posts skipped in a burst. */
  received: number;
  /** Posts in the batch (shown or not): the live rate. */
  postCount: number;
  /** Messages the server dropped for this client (`lagged`). */
  dropped: number;
  /** The server refused a client message. */
  errors: string[];
}

export interface LiveState {
  posts: Post[];
  paused: boolean;
  /** Posts that arrived while paused (all of them, shown or not). */
  missed: number;
  /** The newest posts that arrived while paused, newest first, shown on resume. */
  held: Post[];
  alerts: Alert[];
  viral: ViralItem[];
  snapshot: MetricsSnapshot | null;
  received: number;
  postCount: number;
  dropped: number;
  errors: string[];
}

export const initialLive: LiveState = {
  posts: [],
  paused: false,
  missed: 0,
  held: [],
  alerts: [],
  viral: [],
  snapshot: null,
  received: 0,
  postCount: 0,
  dropped: 0,
  errors: [],
};

export type LiveAction =
  | { type: "batch"; batch: Batch }
  | { type: "seedPosts"; posts: Post[] }
  | { type: "seedAlerts"; alerts: Alert[] }
  | { type: "alertChanged"; alert: Alert }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "clearPosts" };

/** `fresh` (newest first) in front of `older`, without duplicates, at most `max`. */
export function mergeNewestFirst<T extends { id: string | number }>(
  fresh: T[],
  older: T[],
  max: number,
): T[] {
  const seen = new Set<string | number>();
  const out: T[] = [];
  for (const list of [fresh, older]) {
    for (const item of list) {
      if (out.length >= max) return out;
      if (seen.has(item.id)) continue;
      seen.add(item.id);
      out.push(item);
    }
  }
  return out;
}

/** Alerts by id, the newer version of one alert winning, newest fired first. */
export function mergeAlerts(incoming: Alert[], current: Alert[]): Alert[] {
  const byId = new Map<number, Alert>();
  for (const a of current) byId.set(a.id, a);
  for (const a of incoming) {
    const old = byId.get(a.id);
    // A live `firing` message must not undo an acknowledgement made meanwhile.
    if (old && old.status !== "firing" && a.status === "firing") continue;
    byId.set(a.id, { ...old, ...a });
  }
  return [...byId.values()]
    .sort((x, y) => Date.parse(y.fired_at) - Date.parse(x.fired_at) || y.id - x.id)
    .slice(0, MAX_ALERTS);
}

export function liveReducer(state: LiveState, action: LiveAction): LiveState {
  switch (action.type) {
    case "batch": {
      const b = action.batch;
      const fresh = [...b.posts].reverse();
      const next: LiveState = {
        ...state,
        received: state.received + b.received,
        postCount: state.postCount + b.postCount,
        dropped: state.dropped + b.dropped,
        snapshot: b.snapshot ?? state.snapshot,
        alerts: b.alerts.length ? mergeAlerts(b.alerts, state.alerts) : state.alerts,
        viral: b.viral.length ? mergeNewestFirst([...b.viral].reverse(), state.viral, MAX_VIRAL) : state.viral,
        errors: b.errors.length ? [...b.errors, ...state.errors].slice(0, 5) : state.errors,
      };
      if (fresh.length) {
        if (state.paused) {
          next.held = mergeNewestFirst(fresh, state.held, MAX_POSTS);
          next.missed = state.missed + b.postCount;
        } else {
          next.posts = mergeNewestFirst(fresh, state.posts, MAX_POSTS);
        }
      }
      return next;
    }
    case "seedPosts":
      // REST pages come newest first; live posts already shown stay in front.
      return { ...state, posts: mergeNewestFirst(state.posts, action.posts, MAX_POSTS) };
    case "seedAlerts":
      return { ...state, alerts: mergeAlerts(action.alerts, state.alerts) };
    case "alertChanged":
      return { ...state, alerts: mergeAlerts([action.alert], state.alerts.filter((a) => a.id !== action.alert.id)) };
    case "pause":
      return state.paused ? state : { ...state, paused: true, held: [], missed: 0 };
    case "resume":
      return {
        ...state,
        paused: false,
        posts: mergeNewestFirst(state.held, state.posts, MAX_POSTS),
        held: [],
        missed: 0,
      };
    case "clearPosts":
      return { ...state, posts: [], held: [], missed: 0 };
  }
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

/** Reads a `virality:update` payload whatever its exact shape: id, score and interval. */
export function readViral(data: Record<string, unknown>, now = new Date().toISOString()): ViralItem {
  const post = (data.post && typeof data.post === "object" ? data.post : {}) as Record<string, unknown>;
  const interval = (data.interval ?? data.score_interval ?? data.ci) as unknown;
  let low = num(data.low ?? data.lower);
  let high = num(data.high ?? data.upper);
  if (Array.isArray(interval)) {
    low = num(interval[0]);
    high = num(interval[1]);
  } else if (interval && typeof interval === "object") {
    const i = interval as Record<string, unknown>;
    low = num(i.low ?? i.lower ?? i.lo);
    high = num(i.high ?? i.upper ?? i.hi);
  }
  return {
    id: str(data.post_id) ?? str(data.id) ?? str(post.id) ?? "unknown",
    score: num(data.score ?? data.virality ?? data.virality_score),
    low,
    high,
    text: str(data.text) ?? str(post.text),
    platform: str(data.platform) ?? str(post.platform),
    at: str(data.at) ?? str(data.updated_at) ?? now,
  };
}

const POST_PREFIX = '{"type":"message:new"';

/**
 * Turns the raw frames queued since the last flush into one batch. Posts are recognised by
 * their prefix and only the newest `maxPosts` are parsed: in a burst of thousands, the ones
 * that could never be on screen cost a string comparison, not a JSON parse.
 */
export function drain(frames: string[], maxPosts = MAX_POSTS): Batch {
  const batch: Batch = {
    posts: [],
    alerts: [],
    viral: [],
    snapshot: null,
    received: frames.length,
    postCount: 0,
    dropped: 0,
    errors: [],
  };
  let postsToParse = maxPosts;
  for (let i = frames.length - 1; i >= 0; i--) {
    if (frames[i].startsWith(POST_PREFIX)) {
      batch.postCount++;
      if (postsToParse > 0) {
        postsToParse--;
        try {
          batch.posts.push(JSON.parse(frames[i]).data as Post);
        } catch {
          /* a frame that is not JSON cannot come from Pulse; skip it */
        }
      }
      continue;
    }
    let msg: { type?: string; data?: unknown; dropped?: number; error?: { code: string; message: string } };
    try {
      msg = JSON.parse(frames[i]);
    } catch {
      continue;
    }
    const type = msg.type ?? "";
    if (type === "metrics:initial" || type === "metrics:update") {
      if (!batch.snapshot) batch.snapshot = msg.data as MetricsSnapshot;
    } else if (type.startsWith("alert:")) {
      batch.alerts.push(msg.data as Alert);
    } else if (type === "virality:update" && msg.data && typeof msg.data === "object") {
      batch.viral.push(readViral(msg.data as Record<string, unknown>));
    } else if (type === "lagged") {
      batch.dropped += msg.dropped ?? 0;
    } else if (type === "error" && msg.error) {
      batch.errors.push(`${msg.error.code}: ${msg.error.message}`);
    }
  }
  // Walked newest first; hand back oldest first.
  batch.posts.reverse();
  batch.alerts.reverse();
  batch.viral.reverse();
  return batch;
}
