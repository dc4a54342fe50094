// The schemas (and so the TypeScript types) against payloads a real Pulse produced: the
// committed samples in ./fixtures, or, when PULSE_PAYLOAD_DIR is set, the ones the Rust test
// `tests/api/dashboard.rs` just captured from the server it built. Strict schemas: a field the
// server adds, drops or retypes fails here.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { PostVirality, restSchemas, ServerMessage } from "./schemas";

const dir = process.env.PULSE_PAYLOAD_DIR ?? join(import.meta.dirname, "fixtures");
// Saved searches are captured once the server has them (PULSE_PAYLOAD_REQUIRE then names them).
const optional = new Set(["alert-ack", "auth/token", "auth/refused", "saved-searches", "saved-search"]);
const extraRequired = (process.env.PULSE_PAYLOAD_REQUIRE ?? "").split(",").filter(Boolean);

function check(schema: z.ZodType, value: unknown, what: string): void {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`${what} does not match its schema:\n  ${issues.join("\n  ")}`);
  }
}

describe(`payloads in ${dir}`, () => {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".json")) : [];
  const load = (name: string) => JSON.parse(readFileSync(join(dir, name), "utf8"));

  for (const [name, schema] of Object.entries(restSchemas)) {
    const file = `${name.replace("/", "-")}.json`;
    // Samples a server in open mode (as the Rust test runs it) may not be able to provide.
    const required = !optional.has(name) || extraRequired.includes(name);
    it(`REST ${name}`, ({ skip }) => {
      if (!files.includes(file)) {
        if (required) throw new Error(`no sample ${file}`);
        return skip();
      }
      check(schema, load(file), file);
    });
  }

  it("every WebSocket message", () => {
    const messages: { type: string }[] = load("ws.json");
    const types = new Set(messages.map((m) => m.type));
    for (const t of ["subscribed", "message:new", "metrics:initial", "virality:update", "pong", "error"]) {
      expect(types, `a ${t} message was captured`).toContain(t);
    }
    for (const t of extraRequired.filter((r) => r.endsWith(":"))) {
      expect([...types].some((x) => x.startsWith(t)), `a ${t}* message was captured`).toBe(true);
    }
    messages.forEach((m, i) => check(ServerMessage, m, `ws.json[${i}] (${m.type})`));
  });

  it("messages the capture cannot provoke, as documented", () => {
    check(ServerMessage, { type: "lagged", dropped: 12 }, "lagged");
    // A filter on topics is echoed as `topics` (the ids), never as the `topic` a client may send.
    check(ServerMessage, { type: "subscribed", topics: ["posts"], filter: { platform: "reddit", topics: [7, 9] } }, "subscribed with topics");
    expect(() => check(ServerMessage, { type: "subscribed", topics: ["posts"], filter: { topic: 7 } }, "subscribed")).toThrow();
  });

  it("search hits: highlights within their post's text, facets adding up", () => {
    const page = load("search.json");
    expect(page.items.length, "the search sample holds a hit").toBeGreaterThan(0);
    for (const hit of page.items) {
      const length = Array.from(hit.post.text).length;
      let end = 0;
      for (const [s, e] of hit.highlights) {
        expect(s, `${hit.post.id}: spans sorted and not overlapping`).toBeGreaterThanOrEqual(end);
        expect(e, `${hit.post.id}: a span within the text`).toBeLessThanOrEqual(length);
        expect(e).toBeGreaterThan(s);
        end = e;
      }
    }
    const f = page.facets;
    expect(f, "the search sample was asked with facets=true").toBeDefined();
    const sum = (items: { count: number }[]) => items.reduce((n, i) => n + i.count, 0);
    for (const k of ["sentiment", "platform", "lang", "buckets"]) expect(sum(f[k]), `${k} adds up to the total`).toBe(f.total);
    // Facets over many matches are estimated from a sample, and say so.
    const sampled = { ...page, facets: { ...f, sample: { share: 39 / 256, posts: 325 } } };
    expect(() => check(restSchemas.search, sampled, "search")).not.toThrow();
    const wrong = { ...page, facets: { ...f, sample: { share: 0, posts: 325 } } };
    expect(() => check(restSchemas.search, wrong, "search")).toThrow();
    const refused = load("search-refused.json");
    expect(refused.error.code).toBe("invalid_topic_query");
    expect(refused.error.details.position).toBeTypeOf("number");
  });

  it("a drifted payload is caught", () => {
    const post = load("post.json");
    expect(() => check(restSchemas.post, { ...post, surprise: 1 }, "post")).toThrow(/surprise|Unrecognized/);
    const { analysis, ...missing } = post;
    expect(analysis).toBeDefined();
    expect(() => check(restSchemas.post, missing, "post")).toThrow(/analysis/);
    const { topics, ...noTopics } = post;
    expect(Array.isArray(topics)).toBe(true);
    expect(() => check(restSchemas.post, noTopics, "post")).toThrow(/topics/);
    const { hate, ...noHate } = post.analysis;
    expect(hate).toBeTypeOf("number");
    expect(() => check(restSchemas.post, { ...post, analysis: noHate }, "post")).toThrow(/hate/);
    const trending = load("trending-posts.json");
    expect(trending.items.length, "the trending sample holds a post").toBeGreaterThan(0);
    const { updated_at, ...live } = trending.items[0];
    expect(updated_at).toBeTypeOf("string");
    // The live message is the listing's object without `updated_at`, and strictly so.
    check(ServerMessage, { type: "virality:update", data: live }, "virality:update from the listing");
    expect(() => check(PostVirality, trending.items[0], "virality:update data")).toThrow(/updated_at|Unrecognized/);
  });
});
