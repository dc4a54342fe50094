import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Alert, MetricsSnapshot, Post } from "../api/schemas";
import type { PostVirality } from "../api/schemas";
import {
  drain, initialLive, LISTING_GRACE_MS, liveReducer, MAX_POSTS, MAX_VIRAL, mergeAlerts, mergeViral, notDeleted,
  type Batch,
} from "./live";
import { backoff } from "../lib/socket";

function post(id: string): Post {
  return {
    id, platform: "twitter", author: { id: "a", followers: 1 }, text: "t", created_at: "2026-11-21T10:00:00Z",
    lang: null, geo: { city: null, country: null }, product: null, channel: null, parent_id: null, url: null,
    metrics: null,
    analysis: {
      sentiment: { label: "neutral", score: 0 }, emotions: { anger: 0, joy: 0, optimism: 0, sadness: 0 },
      emotion: null, toxicity: 0, hate: 0, churn_risk: 0, model: "m", lang_source: "given",
      language_support: "supported",
    },
    story_id: null,
    topics: [],
    topic_versions: [],
    filtered_topics: [],
    ingested_at: "2026-11-21T10:00:00Z",
  };
}
const frame = (p: Post) => JSON.stringify({ type: "message:new", data: p });
function alert(id: number, status: Alert["status"], fired = "2026-11-21T10:00:00Z"): Alert {
  return {
    id, rule_id: 1, rule_name: "r", kind: "negativity", severity: "warning", dimension: "overall", key: "",
    status, value: 0.6, threshold: 0.5, evidence: {}, fired_at: fired,
  };
}
const batchOf = (frames: string[]): Batch => drain(frames);
function viral(id: string, score: number, observed = "2026-11-21T10:04:00Z", velocity = 1): PostVirality {
  return {
    post_id: id, platform: "twitter", product: "pulse-phone", channel: null, city: null, country: null,
    sentiment: "positive", hashtags: ["#pulsephone"], status: "active", observed_at: observed, age_secs: 240,
    counts: { shares: 40, likes: 120, comments: 9, views: 1800 }, reach: 6000,
    structure: { depth: 1, breadth: 40, structural_virality: 1.95 }, momentum: { velocity, acceleration: 1.3 },
    virality_score: score, virality_probability: 0.31, viral_classification: "no",
    confidence_interval: { lower: 41, upper: 310.5, level: 0.9 }, predicted_final_shares: 58.3, threshold: 300,
    virality_dynamics: "broad", model_lineage: { name: "pulse-seismic", version: "1", params_hash: "h" }, branching: 0.42,
  };
}
const viralFrame = (v: PostVirality) => JSON.stringify({ type: "virality:update", data: v });
/** A metrics snapshot a real Pulse sent (the captured fixture), at time `at`. */
function snapshot(at: string): MetricsSnapshot {
  const captured: { type: string; data?: unknown }[] = JSON.parse(
    readFileSync(new URL("../api/fixtures/ws.json", import.meta.url), "utf8"),
  );
  return { ...(captured.find((m) => m.type === "metrics:update")!.data as MetricsSnapshot), at };
}

describe("drain: one batch per flush", () => {
  it("parses only the newest posts of a burst and counts the rest", () => {
    const frames = Array.from({ length: 5000 }, (_, i) => frame(post(`p${i}`)));
    const b = drain(frames);
    expect(b.postCount).toBe(5000);
    expect(b.received).toBe(5000);
    expect(b.posts).toHaveLength(MAX_POSTS);
    expect(b.posts[0].id).toBe(`p${5000 - MAX_POSTS}`);
    expect(b.posts.at(-1)!.id).toBe("p4999");
  });
  it("keeps the latest snapshot, every alert and lag, and skips garbage", () => {
    const b = drain([
      JSON.stringify({ type: "metrics:update", data: snapshot("2026-11-21T10:00:01Z") }),
      JSON.stringify({ type: "alert:negativity", data: alert(1, "firing") }),
      "not json",
      JSON.stringify({ type: "lagged", dropped: 7 }),
      JSON.stringify({ type: "metrics:update", data: snapshot("2026-11-21T10:00:02Z") }),
      viralFrame(viral("v1", 61.2)),
      JSON.stringify({ type: "error", error: { code: "invalid_filter", message: "bad" } }),
    ]);
    expect(b.snapshot?.at).toBe("2026-11-21T10:00:02Z");
    expect(b.alerts.map((a) => a.id)).toEqual([1]);
    expect(b.dropped).toBe(7);
    expect(b.viral[0]).toMatchObject({ post_id: "v1", virality_score: 61.2, confidence_interval: { lower: 41, upper: 310.5 } });
    expect(b.errors).toEqual(["invalid_filter: bad"]);
  });
});

describe("drain: every message checked against its schema", () => {
  it("applies none that does not match and says which kind it was", () => {
    const { text: _text, ...textless } = post("no-text");
    const b = drain([
      JSON.stringify({ type: "metrics:update", data: { at: "1" } }),
      JSON.stringify({ type: "message:new", data: textless }),
      JSON.stringify({ type: "message:new", data: { ...post("extra"), surprise: 1 } }),
      JSON.stringify({ type: "alert:negativity", data: { ...alert(2, "firing"), status: "exploded" } }),
      JSON.stringify({ type: "message:deleted", data: { id: 7 } }),
      frame(post("fine")),
    ]);
    expect(b.snapshot).toBeNull();
    expect(b.posts.map((p) => p.id)).toEqual(["fine"]);
    expect(b.alerts).toEqual([]);
    expect(b.deleted).toEqual([]);
    expect(b.postCount).toBe(3);
    expect(b.errors.sort()).toEqual([
      "a message of type alert:negativity did not match the dashboard's schema",
      "a message of type message:deleted did not match the dashboard's schema",
      "a message of type message:new did not match the dashboard's schema",
      "a message of type metrics:update did not match the dashboard's schema",
    ]);
  });
});

describe("live reducer", () => {
  it("puts new posts first, without duplicates, capped", () => {
    let s = liveReducer(initialLive, { type: "seedPosts", posts: [post("b"), post("a")] });
    s = liveReducer(s, { type: "batch", batch: batchOf([frame(post("b")), frame(post("c")), frame(post("d"))]) });
    expect(s.posts.map((p) => p.id)).toEqual(["d", "c", "b", "a"]);
    const many = Array.from({ length: 200 }, (_, i) => frame(post(`x${i}`)));
    s = liveReducer(s, { type: "batch", batch: batchOf(many) });
    expect(s.posts).toHaveLength(MAX_POSTS);
    expect(s.posts[0].id).toBe("x199");
    expect(s.postCount).toBe(203);
  });
  it("a REST page arriving late never hides live posts", () => {
    let s = liveReducer(initialLive, { type: "batch", batch: batchOf([frame(post("live"))]) });
    s = liveReducer(s, { type: "seedPosts", posts: [post("old2"), post("old1")] });
    expect(s.posts.map((p) => p.id)).toEqual(["live", "old2", "old1"]);
  });
  it("pausing freezes the list and counts what was missed; resuming shows the newest", () => {
    let s = liveReducer(initialLive, { type: "batch", batch: batchOf([frame(post("a"))]) });
    s = liveReducer(s, { type: "pause" });
    s = liveReducer(s, { type: "batch", batch: batchOf([frame(post("b")), frame(post("c"))]) });
    expect(s.posts.map((p) => p.id)).toEqual(["a"]);
    expect(s.missed).toBe(2);
    s = liveReducer(s, { type: "resume" });
    expect(s.posts.map((p) => p.id)).toEqual(["c", "b", "a"]);
    expect(s.missed).toBe(0);
    expect(s.paused).toBe(false);
  });
  it("a REST page arriving while paused waits for the resume", () => {
    let s = liveReducer(initialLive, { type: "batch", batch: batchOf([frame(post("a"))]) });
    s = liveReducer(s, { type: "pause" });
    s = liveReducer(s, { type: "batch", batch: batchOf([frame(post("live"))]) });
    s = liveReducer(s, { type: "seedPosts", posts: [post("stored"), post("a")] });
    expect(s.posts.map((p) => p.id)).toEqual(["a"]);
    expect(s.missed).toBe(1);
    s = liveReducer(s, { type: "resume" });
    expect(s.posts.map((p) => p.id)).toEqual(["live", "stored", "a"]);
  });
  it("merges alerts by id and keeps an acknowledgement", () => {
    let s = liveReducer(initialLive, { type: "seedAlerts", alerts: [alert(1, "firing")] });
    s = liveReducer(s, { type: "alertChanged", alert: { ...alert(1, "acknowledged"), acknowledged_at: "2026-11-21T10:01:00Z" } });
    s = liveReducer(s, { type: "batch", batch: batchOf([JSON.stringify({ type: "alert:negativity", data: alert(1, "firing") })]) });
    expect(s.alerts).toHaveLength(1);
    expect(s.alerts[0].status).toBe("acknowledged");
    const merged = mergeAlerts([alert(3, "firing", "2026-11-21T11:00:00Z")], s.alerts);
    expect(merged.map((a) => a.id)).toEqual([3, 1]);
  });
  it("a filter change empties the posts, the pause buffer and the live virality", () => {
    let s = liveReducer(initialLive, { type: "batch", batch: batchOf([frame(post("a")), viralFrame(viral("v", 10))]) });
    expect(s.viral).toHaveLength(1);
    s = liveReducer(s, { type: "filtersChanged" });
    expect(s.posts).toEqual([]);
    expect(s.viral).toEqual([]);
  });
});

describe("virality: the listing with live updates", () => {
  it("keeps one live reading per post, its latest observation, newest first, capped", () => {
    let s = liveReducer(initialLive, {
      type: "batch", at: 1000,
      batch: batchOf([viralFrame(viral("a", 10, "2026-11-21T10:00:02Z")), viralFrame(viral("b", 20))]),
    });
    expect(s.viral.map((v) => v.data.post_id)).toEqual(["b", "a"]);
    // A message observing earlier events (out of order) does not undo a later one.
    s = liveReducer(s, {
      type: "batch", at: 2000,
      batch: batchOf([viralFrame(viral("a", 30, "2026-11-21T10:05:00Z")), viralFrame(viral("a", 5, "2026-11-21T10:00:01Z"))]),
    });
    expect(s.viral.map((v) => [v.data.post_id, v.data.virality_score, v.at])).toEqual([["a", 30, 2000], ["b", 20, 1000]]);
    const many = Array.from({ length: 50 }, (_, i) => viralFrame(viral(`m${i}`, i)));
    s = liveReducer(s, { type: "batch", batch: batchOf(many) });
    expect(s.viral).toHaveLength(MAX_VIRAL);
    expect(s.viral[0].data.post_id).toBe("m49");
  });
  it("merges by latest observation and ranks like the listing", () => {
    const listed = [
      { ...viral("a", 50, "2026-11-21T10:04:00Z"), updated_at: "2026-11-21T10:04:01Z" },
      { ...viral("b", 40, "2026-11-21T10:04:00Z"), updated_at: "2026-11-21T10:04:01Z" },
      { ...viral("c", 40, "2026-11-21T10:04:00Z", 3), updated_at: "2026-11-21T10:04:01Z" },
    ];
    const live = [
      { data: viral("b", 70, "2026-11-21T10:04:30Z"), at: 0 }, // newer: replaces the listed reading
      { data: viral("a", 10, "2026-11-21T10:03:00Z"), at: 0 }, // older: the listing's stays
      { data: viral("d", 45), at: 0 }, // not listed yet: joins
    ];
    const merged = mergeViral(listed, live);
    expect(merged.map((v) => [v.post_id, v.virality_score])).toEqual([["b", 70], ["a", 50], ["d", 45], ["c", 40]]);
    // Equal scores: the faster first.
    expect(mergeViral([listed[1], listed[2]], []).map((v) => v.post_id)).toEqual(["c", "b"]);
    expect(mergeViral(listed, live, 2)).toHaveLength(2);
  });
  it("drops live posts a later listing leaves out, after a grace period", () => {
    let s = liveReducer(initialLive, { type: "batch", at: 10_000, batch: batchOf([viralFrame(viral("gone", 10)), viralFrame(viral("kept", 20))]) });
    const same = liveReducer(s, { type: "viralListed", ids: [], at: 10_000 + LISTING_GRACE_MS - 1 });
    expect(same).toBe(s);
    s = liveReducer(s, { type: "viralListed", ids: ["kept"], at: 10_000 + LISTING_GRACE_MS + 1 });
    expect(s.viral.map((v) => v.data.post_id)).toEqual(["kept"]);
  });
});

describe("reconnect backoff", () => {
  it("doubles from half a second to a cap, with bounded jitter", () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoff(a, mid))).toEqual([500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    expect(backoff(1, () => 0)).toBe(375);
    expect(backoff(1, () => 1)).toBe(625);
  });
});

const deletedFrame = (id: string) =>
  JSON.stringify({ type: "message:deleted", data: { id, deleted_at: "2026-11-21T10:05:00Z" } });

describe("deletions", () => {
  it("take a shown post, a held post and its live virality out, and keep it out of later pages", () => {
    let s = liveReducer(initialLive, { type: "batch", batch: batchOf([frame(post("a")), frame(post("b")), viralFrame(viral("a", 70))]) });
    expect(s.posts.map((p) => p.id)).toEqual(["b", "a"]);
    s = liveReducer(s, { type: "pause" });
    s = liveReducer(s, { type: "batch", batch: batchOf([frame(post("c"))]) });
    expect(s.held.map((p) => p.id)).toEqual(["c"]);
    s = liveReducer(s, { type: "batch", batch: batchOf([deletedFrame("a"), deletedFrame("c")]) });
    expect(s.posts.map((p) => p.id)).toEqual(["b"]);
    expect(s.held).toEqual([]);
    expect(s.viral).toEqual([]);
    // A REST page fetched before the deletion still lists the post: it stays out.
    s = liveReducer(s, { type: "resume" });
    s = liveReducer(s, { type: "seedPosts", posts: [post("a"), post("d")] });
    expect(s.posts.map((p) => p.id)).toEqual(["b", "d"]);
  });
  it("filter a trending listing fetched before the deletion", () => {
    const s = liveReducer(initialLive, { type: "batch", batch: batchOf([deletedFrame("v1")]) });
    const listed = [viral("v1", 90), viral("v2", 50)].filter(notDeleted(s.deleted));
    expect(mergeViral(listed, s.viral).map((v) => v.post_id)).toEqual(["v2"]);
  });
  it("a deletion and the post in one batch: the post is not shown", () => {
    const s = liveReducer(initialLive, { type: "batch", batch: batchOf([frame(post("x")), deletedFrame("x")]) });
    expect(s.posts).toEqual([]);
    expect(s.deleted).toEqual(["x"]);
  });
});
