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
