// The live part of the dashboard: what the WebSocket brought, folded in batches. Pure
// functions, so bursts, pauses and reconnects are unit-tested without a browser.
import { ServerMessage } from "../api/schemas";
import type { Alert, MetricsSnapshot, Post, PostVirality } from "../api/schemas";

/** Posts the stream shows (and keeps while paused). */
export const MAX_POSTS = 50;
/** Alerts the feed keeps. */
export const MAX_ALERTS = 50;
/** Posts the viral panel shows (and live updates it keeps). */
export const MAX_VIRAL = 20;
/** Ids of deleted posts remembered, so a REST page fetched before the deletion cannot bring one back. */
export const MAX_DELETED = 500;

/** A live virality reading and when it arrived (ms since the epoch). */
export interface LiveViral {
  data: PostVirality;
  at: number;
}

/** Everything one flush of the socket's queue carries. */
export interface Batch {
  /** New posts, oldest first (at most MAX_POSTS: older ones in a burst were never shown). */
  posts: Post[];
  alerts: Alert[];
  /** `virality:update` data, oldest first. */
  viral: PostVirality[];
  /** Ids of posts deleted (`message:deleted`), oldest first. */
  deleted: string[];
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
  /** The latest live virality of each post, newest first. */
  viral: LiveViral[];
  /** Ids of posts deleted since the page opened, newest last (at most MAX_DELETED). */
  deleted: string[];
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
  deleted: [],
  snapshot: null,
  received: 0,
  postCount: 0,
  dropped: 0,
  errors: [],
};

export type LiveAction =
  | { type: "batch"; batch: Batch; at?: number }
  | { type: "seedPosts"; posts: Post[] }
  | { type: "seedAlerts"; alerts: Alert[] }
  | { type: "alertChanged"; alert: Alert }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "filtersChanged" }
  | { type: "viralListed"; ids: string[]; at: number };

/**
 * How long a live reading is kept after a listing fetched later leaves its post out: the
 * tracker publishes before it writes the row the listing reads.
 */
export const LISTING_GRACE_MS = 3000;

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

/** The later of two virality readings of one post: the later observation; a tie keeps `a`. */
function later<T extends PostVirality>(a: T, b: T): T {
  return Date.parse(b.observed_at) > Date.parse(a.observed_at) ? b : a;
}

/** Live virality updates, newest first: one per post, its latest observation, at most MAX_VIRAL. */
export function mergeLiveViral(incoming: PostVirality[], current: LiveViral[], at: number): LiveViral[] {
  const byId = new Map<string, LiveViral>();
  // Oldest first throughout, so the latest message of a post puts it at the front.
  for (const v of [...current].reverse()) byId.set(v.data.post_id, v);
  for (const v of incoming) {
    const old = byId.get(v.post_id);
    byId.delete(v.post_id);
    byId.set(v.post_id, { data: old ? later(old.data, v) : v, at });
  }
  return [...byId.values()].reverse().slice(0, MAX_VIRAL);
}

/**
 * What the viral panel shows: the trending listing (REST) with the live updates merged in.
 * A post's live reading replaces its listed one only when it observed later events (an equal
 * observation is the same prediction, and the listing's is kept); live posts the listing does
 * not have yet join it. Ranked like the listing: score, then velocity.
 */
export function mergeViral<T extends PostVirality>(listed: T[], live: LiveViral[], max = MAX_VIRAL): (T | PostVirality)[] {
  const byId = new Map<string, T | PostVirality>();
  for (const v of listed) byId.set(v.post_id, v);
  for (const { data: v } of live) {
    const old = byId.get(v.post_id);
    byId.set(v.post_id, old ? later<PostVirality>(old, v) : v);
  }
  // A stable sort: ties keep the listing's order (its last key, the id, sorts in the
  // database's collation).
  return [...byId.values()]
    .sort((x, y) => y.virality_score - x.virality_score || y.momentum.velocity - x.momentum.velocity)
    .slice(0, max);
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

/** `items` without those whose id (or `post_id`) is in `deleted`. */
export function withoutDeleted<T extends { id?: string | number; post_id?: string }>(items: T[], deleted: string[]): T[] {
  if (!deleted.length) return items;
  const gone = new Set(deleted);
  const kept = items.filter((i) => !gone.has(String(i.post_id ?? i.id)));
  return kept.length === items.length ? items : kept;
}

/** A predicate for lists the dashboard fetches itself (trending): not a post deleted since. */
export function notDeleted(deleted: string[]): (item: { post_id: string }) => boolean {
  const gone = new Set(deleted);
  return (item) => !gone.has(item.post_id);
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
        viral: b.viral.length ? mergeLiveViral(b.viral, state.viral, action.at ?? Date.now()) : state.viral,
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
      if (b.deleted.length) {
        // A deletion applies wherever the post is shown, paused or not.
        next.deleted = [...state.deleted, ...b.deleted].slice(-MAX_DELETED);
        next.posts = withoutDeleted(next.posts, b.deleted);
        next.held = withoutDeleted(next.held, b.deleted);
        next.viral = next.viral.filter((v) => !b.deleted.includes(v.data.post_id));
      }
      return next;
    }
    case "seedPosts":
      // REST pages come newest first; live posts already shown stay in front. A page that
      // lands while paused (one fetched after a filter change can be slow) waits behind the
      // held posts: it may hold posts newer than the frozen list.
      {
        const posts = withoutDeleted(action.posts, state.deleted);
        return state.paused
          ? { ...state, held: mergeNewestFirst(state.held, posts, MAX_POSTS) }
          : { ...state, posts: mergeNewestFirst(state.posts, posts, MAX_POSTS) };
      }
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
    case "filtersChanged":
      // Live posts and virality were filtered by the old subscription.
      return { ...state, posts: [], held: [], missed: 0, viral: [] };
    case "viralListed": {
      // A post a later listing leaves out has finished or fallen out of the top: drop it.
      const listed = new Set(action.ids);
      const viral = state.viral.filter((v) => listed.has(v.data.post_id) || v.at > action.at - LISTING_GRACE_MS);
      return viral.length === state.viral.length ? state : { ...state, viral };
    }
  }
}

const POST_PREFIX = '{"type":"message:new"';

/**
 * A frame parsed and checked against the schema of every server message; `undefined` for a
 * frame that is not JSON (it cannot come from Pulse), an error text for one that is JSON but
 * matches no message the dashboard knows.
 */
function parseFrame(frame: string): ServerMessage | string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(frame);
  } catch {
    return undefined;
  }
  const parsed = ServerMessage.safeParse(json);
  if (parsed.success) return parsed.data;
  const type = json && typeof json === "object" && "type" in json ? String(json.type) : "untyped";
  return `a message of type ${type} did not match the dashboard's schema`;
}

/**
 * Turns the raw frames queued since the last flush into one batch, each message parsed with
 * its schema. Posts are recognised by their prefix and only the newest `maxPosts` are parsed:
 * in a burst of thousands, the ones that could never be on screen cost a string comparison,
 * not a parse.
 */
export function drain(frames: string[], maxPosts = MAX_POSTS): Batch {
  const batch: Batch = {
    posts: [],
    alerts: [],
    viral: [],
    deleted: [],
    snapshot: null,
    received: frames.length,
    postCount: 0,
    dropped: 0,
    errors: [],
  };
  let postsToParse = maxPosts;
  for (let i = frames.length - 1; i >= 0; i--) {
    const isPost = frames[i].startsWith(POST_PREFIX);
    if (isPost) {
      batch.postCount++;
      if (postsToParse === 0) continue;
      postsToParse--;
    }
    const msg = parseFrame(frames[i]);
    if (msg === undefined) continue;
    if (typeof msg === "string") {
      if (!batch.errors.includes(msg)) batch.errors.push(msg);
      continue;
    }
    switch (msg.type) {
      case "message:new":
        batch.posts.push(msg.data);
        break;
      case "metrics:initial":
      case "metrics:update":
        if (!batch.snapshot) batch.snapshot = msg.data;
        break;
      case "message:deleted":
        batch.deleted.push(msg.data.id);
        break;
      case "virality:update":
        batch.viral.push(msg.data);
        break;
      // The stories panel polls the listing; these only keep the socket's stream typed.
      case "story:new":
      case "story:update":
        break;
      case "lagged":
        batch.dropped += msg.dropped;
        break;
      case "error":
        batch.errors.push(`${msg.error.code}: ${msg.error.message}`);
        break;
      default:
        if ("data" in msg) batch.alerts.push(msg.data);
    }
  }
  // Walked newest first; hand back oldest first.
  batch.posts.reverse();
  batch.alerts.reverse();
  batch.viral.reverse();
  batch.deleted.reverse();
  return batch;
}
