// Captures one sample of every REST and WebSocket payload the dashboard reads from a running
// Pulse, one JSON file per kind, for the contract test (src/api/contract.test.ts). A scripted
// share cascade (e2e/cascade.mjs) makes the virality tracker publish a `virality:update` while
// the socket listens and list the post on GET /api/v1/trending/posts; an alert rule of its own
// (created once the socket is subscribed, so it needs an open server or an admin's) makes an
// `alert:*` message come while it listens. A topic of its own, created first, is matched by
// the post it sends while listening, so `message:new` carries a topic, and lists the topics,
// their share of voice and a preview of its query; a search for its query gives a page of hits
// with facets, and a saved search of it the saved searches (on a server that keeps them).
//
//   node --experimental-websocket e2e/capture-payloads.mjs http://127.0.0.1:8080 OUT_DIR [SECONDS]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { postCascade } from "./cascade.mjs";

const [base, out, secs = "6"] = process.argv.slice(2);
if (!base || !out) {
  console.error("usage: capture-payloads.mjs BASE_URL OUT_DIR [SECONDS]");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const save = (name, value) => writeFileSync(join(out, `${name}.json`), JSON.stringify(value, null, 1));
const get = async (path, init) => {
  const res = await fetch(base + path, init);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
};

// A topic whose words the generator's posts and our own live post hold; the matchers of the
// server's processes pick topics up within `topics.refresh_ms` (1 s by default).
const topicQuery = "sampling OR phone OR love OR battery";
const topic = await get("/api/v1/topics", {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ name: `capture-${Date.now()}`, query: topicQuery }),
});
await new Promise((r) => setTimeout(r, 1500));

const rest = {
  "metrics/overall": "/api/v1/metrics/overall?window=1h",
  "metrics/platforms": "/api/v1/metrics/platforms?window=1h",
  "metrics/channels": "/api/v1/metrics/channels?window=1h&platform=twitter",
  "metrics/languages": "/api/v1/metrics/languages?window=1h",
  "metrics/products": "/api/v1/metrics/products?window=1h",
  "metrics/geo": "/api/v1/metrics/geo?window=1h",
  "metrics/timeseries": "/api/v1/metrics/timeseries",
  "metrics/topics": "/api/v1/metrics/topics?window=1h",
  topics: "/api/v1/topics",
  "trending/terms": "/api/v1/trending/terms?window=1h",
  posts: "/api/v1/posts?limit=20",
  stories: "/api/v1/stories?sort=growing",
  alerts: "/api/v1/alerts?limit=20",
  pipeline: "/api/v1/pipeline",
  "auth/status": "/api/v1/auth/status",
};
for (const [name, path] of Object.entries(rest)) save(name.replace("/", "-"), await get(path));
const posts = await get("/api/v1/posts?limit=1");
if (posts.items[0]) save("post", await get(`/api/v1/posts/${encodeURIComponent(posts.items[0].id)}`));
// What the topic's query matches among the stored posts, with a few of them.
save("topic-preview", await get("/api/v1/topic-preview", {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: topicQuery, hours: 1, samples: 3 }),
}));
// A search for the topic's words, by relevance (so hits carry a score), with its facets, and a
// query the parser refuses (the error's position and what it expected).
const search = new URLSearchParams({ q: topicQuery, order: "relevance", limit: "5", facets: "true" });
save("search", await get(`/api/v1/search?${search}`));
const badSearch = await fetch(`${base}/api/v1/search?${new URLSearchParams({ q: "refund AND" })}`);
if (badSearch.status !== 400) throw new Error(`a query that does not parse: ${badSearch.status} ${await badSearch.text()}`);
save("search-refused", await badSearch.json());
// Saved searches, on a server that keeps them: one saved (with its filters), then the list.
const savedSearch = await fetch(`${base}/api/v1/saved-searches`, {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ name: `capture-${Date.now()}`, query: topicQuery, filters: { platform: "twitter", lang: "en", order: "relevance" } }),
});
if (savedSearch.ok) {
  save("saved-search", await savedSearch.json());
  save("saved-searches", await get("/api/v1/saved-searches"));
} else if (savedSearch.status !== 404) {
  throw new Error(`saving a search: ${savedSearch.status} ${await savedSearch.text()}`);
}
// An export job of the search, as created, then the caller's jobs.
save("export-job", await get(`/api/v1/exports?${new URLSearchParams({ q: topicQuery, format: "csv" })}`, { method: "POST" }));
save("export-jobs", await get("/api/v1/exports"));
// The API's error shape, as a refused token exchange answers it (401 with authentication,
// 400 `auth_disabled` on an open server).
const refused = await fetch(`${base}/api/v1/auth/token`, {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: "pulse_not_a_key" }),
});
if (!refused.ok) save("auth-refused", await refused.json());
// An alert channel, listed, and a test message to a port nobody listens on (delivered: false).
await get("/api/v1/webhooks", {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ kind: "slack", name: "capture", url: "http://127.0.0.1:9/services/capture", min_severity: "warning", quiet_hours: { from: "22:00", to: "07:00", timezone: "Europe/Paris" } }),
});
const channels = await get("/api/v1/webhooks");
save("webhooks", channels);
save("webhook-test", await get(`/api/v1/webhooks/${channels.items[0].id}/test`, { method: "POST" }));
// A reach forecast of a draft (nothing is stored).
save("forecast", await get("/api/v1/forecast", {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ posts: [{ text: "Our new headphones ship today #launch https://example.com/x", platform: "twitter", author: { id: "capture", followers: 1200 } }] }),
}));
const post = (body) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const view = await get("/api/v1/views", post({
  name: `capture-${Date.now()}`, shared: true,
  state: { filters: { platform: "twitter" }, window: "1h", panels: ["overall", "trend"] },
}));
save("view", view);
save("views", await get("/api/v1/views"));
await get("/api/v1/digests/schedules", post({
  name: `capture-${Date.now()}`, scope: "all", cadence: "weekly", weekday: "monday", at: "08:00",
  timezone: "Europe/Paris", channels: [channels.items[0].id], view: view.id,
}));
save("digest-schedules", await get("/api/v1/digests/schedules"));
const now = Date.now();
save("digest-preview", await get("/api/v1/digests/preview", post({
  scope: "all", from: new Date(now - 86_400_000).toISOString(), to: new Date(now).toISOString(),
})));
// The review queue of every post, a label on its first post, the labels, the topic's learned
// relevance (no model yet) and the sentiment calibration.
const review = await get("/api/v1/review/next", post({ count: 3 }));
save("review-next", review);
if (!review.items[0]) throw new Error("the review queue handed out no post");
const label = await get("/api/v1/labels", post({ post_id: review.items[0].post.id, kind: "sentiment", value: "negative" }));
save("label", label);
save("labels", await get(`/api/v1/labels?post_id=${encodeURIComponent(label.post_id)}`));
save("relevance", await get(`/api/v1/topics/${topic.id}/relevance`));
save("calibration", await get("/api/v1/calibration"));
const alerts = await get("/api/v1/alerts?status=firing&limit=1");
if (alerts.items[0]) save("alert-ack", await get(`/api/v1/alerts/${alerts.items[0].id}/ack`, { method: "POST" }));

// WebSocket: the first messages of each type within the time allowed, and past it until a
// virality update and an alert came (up to a minute more, for a busy machine).
const cascadeId = `capture-cascade-${Date.now()}`;
const seen = new Map();
const alerted = () => [...seen.keys()].some((type) => type.startsWith("alert:"));
await new Promise((resolve) => {
  const ws = new WebSocket(base.replace(/^http/, "ws") + "/ws");
  let started = false;
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "subscribe", topics: ["posts", "metrics", "alerts", "virality", "stories"], filter: {} }));
    ws.send(JSON.stringify({ type: "ping" }));
    ws.send(JSON.stringify({ type: "subscribe", topics: ["nope"] }));
  };
  const subscribed = () => {
    // A post of our own, so a post:new is among the samples even on a quiet server, a share
    // cascade and an alert rule that fires on any negativity in a platform.
    const post = {
      type: "post", id: `capture-${Date.now()}`, platform: "bluesky", author: { id: "capture", followers: 3 },
      text: "Sampling the live stream", created_at: new Date().toISOString(), geo: { city: "Lyon", country: "FR" },
      metrics: { likes: 2, shares: 1 },
    };
    fetch(base + "/api/v1/events", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(post) });
    postCascade(base, cascadeId).catch((e) => console.error(e.message));
    const rule = {
      name: `capture-${Date.now()}`, kind: "negativity", dimension: "platform", threshold: 0.01, min_volume: 1, window_minutes: 60,
    };
    get("/api/v1/alert-rules", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(rule) })
      .catch((e) => console.error(e.message));
  };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "subscribed" && !started) {
      started = true;
      subscribed();
    }
    const list = seen.get(msg.type) ?? [];
    if (list.length < 3) list.push(msg);
    seen.set(msg.type, list);
  };
  const opened = Date.now();
  const done = setInterval(() => {
    const elapsed = Date.now() - opened;
    const complete = seen.has("virality:update") && alerted();
    if (elapsed >= Number(secs) * 1000 && (complete || elapsed >= (Number(secs) + 60) * 1000)) {
      clearInterval(done);
      ws.close();
      resolve();
    }
  }, 100);
});
save("ws", [...seen.values()].flat());

// The trending listing, once the cascade's row is written.
let trending;
for (let i = 0; i < 50; i++) {
  trending = await get("/api/v1/trending/posts?limit=5");
  if (trending.items.some((v) => v.post_id === cascadeId)) break;
  await new Promise((r) => setTimeout(r, 200));
}
save("trending-posts", trending);
console.log(`captured ${Object.keys(rest).length + 2} REST payloads and WebSocket types: ${[...seen.keys()].join(", ")}`);
