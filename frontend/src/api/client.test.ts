// The REST client's credentials: the bearer header on every call, none on an open server, and
// a 401 answered by one renewal and one retry.
import { describe, expect, it, vi } from "vitest";
import { createApi, type Credentials } from "./client";
import { parseFilters } from "../lib/filters";

const ok = (body: unknown = { items: [], next_before: null }) =>
  new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
const unauthorized = () =>
  new Response(JSON.stringify({ error: { code: "unauthorized", message: "authentication required", details: {} } }), { status: 401 });

function credentials(token: string | null, renewed: string | Error = "fresh"): Credentials & { [k: string]: ReturnType<typeof vi.fn> } {
  return {
    token: vi.fn(async () => token),
    renew: vi.fn(async () => {
      if (renewed instanceof Error) throw renewed;
      return renewed;
    }),
    signOut: vi.fn(),
  };
}

const authHeader = (call: unknown[]) => new Headers((call[1] as RequestInit).headers).get("authorization");

describe("createApi", () => {
  it("adds the bearer token to every call, POSTs included", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => ok());
    const api = createApi(credentials("jwt-1"), fetchFn);
    await api.overall(parseFilters("?window=1h"));
    await api.acknowledge(7);
    expect(fetchFn.mock.calls.map(authHeader)).toEqual(["Bearer jwt-1", "Bearer jwt-1"]);
    expect(fetchFn.mock.calls[1][0]).toBe("/api/v1/alerts/7/ack");
    expect((fetchFn.mock.calls[1][1] as RequestInit).method).toBe("POST");
  });

  it("sends no header on an open server", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => ok());
    await createApi(credentials(null), fetchFn).alerts();
    expect(authHeader(fetchFn.mock.calls[0])).toBeNull();
  });

  it("a 401 renews the token once and retries once with the new one", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => ok());
    fetchFn.mockResolvedValueOnce(unauthorized());
    const creds = credentials("expired", "fresh");
    const page = await createApi(creds, fetchFn).alerts();
    expect(page).toEqual({ items: [], next_before: null });
    expect(creds.renew).toHaveBeenCalledTimes(1);
    expect(fetchFn.mock.calls.map(authHeader)).toEqual(["Bearer expired", "Bearer fresh"]);
    expect(creds.signOut).not.toHaveBeenCalled();
  });

  it("a second 401 is not retried again: the session ends", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => unauthorized());
    const creds = credentials("expired", "fresh");
    await expect(createApi(creds, fetchFn).pipeline()).rejects.toMatchObject({ status: 401, code: "unauthorized" });
    expect(fetchFn).toHaveBeenCalledTimes(2);
    expect(creds.renew).toHaveBeenCalledTimes(1);
    expect(creds.signOut).toHaveBeenCalledTimes(1);
  });

  it("a failed renewal fails the call without retrying it", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => unauthorized());
    const creds = credentials("expired", new Error("renewal refused"));
    await expect(createApi(creds, fetchFn).pipeline()).rejects.toThrow("renewal refused");
    expect(fetchFn).toHaveBeenCalledTimes(1);
  });

  it("other errors carry the server's code and are not retried", async () => {
    const forbidden = new Response(JSON.stringify({ error: { code: "forbidden", message: "role ingest may not", details: {} } }), { status: 403 });
    const fetchFn = vi.fn(async (..._: unknown[]) => forbidden);
    const creds = credentials("jwt");
    await expect(createApi(creds, fetchFn).alerts()).rejects.toMatchObject({ status: 403, code: "forbidden", message: "role ingest may not" });
    expect(creds.renew).not.toHaveBeenCalled();
  });
});

describe("topics", () => {
  const calls = (fetchFn: ReturnType<typeof vi.fn>) =>
    fetchFn.mock.calls.map(([url, init]) => ({ url, method: (init as RequestInit).method ?? "GET", body: (init as RequestInit).body }));

  it("every filterable call carries the topic; the share of voice every filter but it", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => ok());
    const api = createApi(credentials(null), fetchFn);
    const f = parseFilters("?topic=7&platform=reddit&window=1h");
    await api.posts(f);
    await api.overall(f);
    await api.stories(f, 8);
    await api.trendingPosts(f, 20);
    await api.terms(f);
    await api.timeseries(parseFilters("?topic=7"));
    await api.topicMetrics(f);
    expect(calls(fetchFn).map((c) => c.url)).toEqual([
      "/api/v1/posts?limit=50&topic=7&platform=reddit",
      "/api/v1/metrics/overall?window=1h&topic=7&platform=reddit",
      "/api/v1/stories?sort=growing&limit=8&topic=7&platform=reddit",
      "/api/v1/trending/posts?limit=20&topic=7&platform=reddit",
      "/api/v1/trending/terms?window=1h&limit=12&topic=7",
      "/api/v1/metrics/timeseries?dimension=topic&key=7&bucket=1m",
      "/api/v1/metrics/topics?window=1h&platform=reddit",
    ]);
  });

  it("writes topics with JSON bodies; a deletion's 204 has no body", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => ok({ id: 3 }));
    fetchFn.mockResolvedValueOnce(ok({ id: 3 })).mockResolvedValueOnce(ok({ id: 3 })).mockResolvedValueOnce(new Response(null, { status: 204 }));
    const api = createApi(credentials("jwt"), fetchFn);
    await api.createTopic({ name: "Cloud", query: '"pulse cloud"' });
    await api.updateTopic(3, { status: "paused" });
    await expect(api.deleteTopic(3)).resolves.toBeUndefined();
    expect(calls(fetchFn)).toEqual([
      { url: "/api/v1/topics", method: "POST", body: '{"name":"Cloud","query":"\\"pulse cloud\\""}' },
      { url: "/api/v1/topics/3", method: "PATCH", body: '{"status":"paused"}' },
      { url: "/api/v1/topics/3", method: "DELETE", body: undefined },
    ]);
    expect(new Headers((fetchFn.mock.calls[0][1] as RequestInit).headers).get("content-type")).toBe("application/json");
  });

  it("a preview asks for a few samples, and can be aborted", async () => {
    const fetchFn = vi.fn(async (..._: unknown[]) => ok());
    const controller = new AbortController();
    await createApi(credentials(null), fetchFn).previewTopic("pulse", 24, controller.signal);
    expect(calls(fetchFn)[0]).toEqual({ url: "/api/v1/topic-preview", method: "POST", body: '{"query":"pulse","hours":24,"samples":3}' });
    expect((fetchFn.mock.calls[0][1] as RequestInit).signal).toBe(controller.signal);
  });

  it("a refused query's position and expectation reach the caller", async () => {
    const body = {
      error: { code: "invalid_topic_query", message: "the ( at character 0 is not closed (at character 14)", details: { position: 14, expected: ")" } },
    };
    const fetchFn = vi.fn(async (..._: unknown[]) => new Response(JSON.stringify(body), { status: 400 }));
    await expect(createApi(credentials(null), fetchFn).createTopic({ name: "x", query: "(apple OR pear" })).rejects.toMatchObject({
      status: 400,
      code: "invalid_topic_query",
      details: { position: 14, expected: ")" },
    });
  });
});
