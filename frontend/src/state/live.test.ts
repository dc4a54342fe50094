import { describe, expect, it } from "vitest";
import type { Alert, Post } from "../api/schemas";
import { drain, initialLive, liveReducer, MAX_POSTS, mergeAlerts, readViral, type Batch } from "./live";
import { backoff } from "../lib/socket";

function post(id: string): Post {
  return {
    id, platform: "twitter", author: { id: "a", followers: 1 }, text: "t", created_at: "2026-11-21T10:00:00Z",
    lang: null, geo: { city: null, country: null }, product: null, channel: null, parent_id: null, url: null,
    metrics: null,
    analysis: {
      sentiment: { label: "neutral", score: 0 }, emotions: { anger: 0, joy: 0, optimism: 0, sadness: 0 },
      emotion: null, toxicity: 0, hate: 0, churn_risk: 0, model: "m",
    },
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
      JSON.stringify({ type: "metrics:update", data: { at: "1" } }),
      JSON.stringify({ type: "alert:negativity", data: alert(1, "firing") }),
      "not json",
      JSON.stringify({ type: "lagged", dropped: 7 }),
      JSON.stringify({ type: "metrics:update", data: { at: "2" } }),
      JSON.stringify({ type: "virality:update", data: { post_id: "v1", score: 0.9, interval: [0.8, 0.95] } }),
      JSON.stringify({ type: "error", error: { code: "invalid_filter", message: "bad" } }),
    ]);
    expect(b.snapshot).toEqual({ at: "2" });
    expect(b.alerts.map((a) => a.id)).toEqual([1]);
    expect(b.dropped).toBe(7);
    expect(b.viral[0]).toMatchObject({ id: "v1", score: 0.9, low: 0.8, high: 0.95 });
    expect(b.errors).toEqual(["invalid_filter: bad"]);
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
  it("merges alerts by id and keeps an acknowledgement", () => {
    let s = liveReducer(initialLive, { type: "seedAlerts", alerts: [alert(1, "firing")] });
    s = liveReducer(s, { type: "alertChanged", alert: { ...alert(1, "acknowledged"), acknowledged_at: "2026-11-21T10:01:00Z" } });
    s = liveReducer(s, { type: "batch", batch: batchOf([JSON.stringify({ type: "alert:negativity", data: alert(1, "firing") })]) });
    expect(s.alerts).toHaveLength(1);
    expect(s.alerts[0].status).toBe("acknowledged");
    const merged = mergeAlerts([alert(3, "firing", "2026-11-21T11:00:00Z")], s.alerts);
    expect(merged.map((a) => a.id)).toEqual([3, 1]);
  });
  it("clearing posts on a filter change empties the list and the pause buffer", () => {
    let s = liveReducer(initialLive, { type: "batch", batch: batchOf([frame(post("a"))]) });
    s = liveReducer(s, { type: "clearPosts" });
    expect(s.posts).toEqual([]);
  });
});

describe("virality payloads are read defensively", () => {
  it("accepts several shapes", () => {
    expect(readViral({ id: "a", virality: 2, lower: 1, upper: 3 }, "t")).toMatchObject({ id: "a", score: 2, low: 1, high: 3 });
    expect(readViral({ post: { id: "b", text: "hi", platform: "reddit" }, score: 0.5, interval: { low: 0.4, high: 0.6 } }, "t"))
      .toMatchObject({ id: "b", text: "hi", platform: "reddit", low: 0.4, high: 0.6 });
    expect(readViral({}, "t")).toMatchObject({ id: "unknown", score: null });
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
