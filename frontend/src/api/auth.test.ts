// The token store: sign-in and its refusals, renewal a minute before expiry (fake timers),
// one exchange for concurrent renewals, the end of the session when renewal fails, sign-out.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  EXPIRY_MARGIN_MS, exchangeKey, mayEditTopics, mayRead, renewalDelay, RENEW_RETRY_MS, signInNotice, TokenStore, type KeyStorage,
} from "./auth";
import { ApiError } from "./errors";
import type { Role, TokenResponse } from "./schemas";

function memoryStorage(initial: string | null = null): KeyStorage & { value: string | null } {
  return {
    value: initial,
    get() {
      return this.value;
    },
    set(key) {
      this.value = key;
    },
    clear() {
      this.value = null;
    },
  };
}

let issued = 0;
function token(role: Role = "analyst", ttlSecs = 3600): TokenResponse {
  issued++;
  return {
    access_token: `jwt-${issued}`,
    token_type: "Bearer",
    expires_in: ttlSecs,
    expires_at: new Date(Date.now() + ttlSecs * 1000).toISOString(),
    role,
    key_id: "k1",
  };
}

/** An exchange answering with `answers` in turn (the last one repeats). */
function exchanger(...answers: (TokenResponse | Error)[]) {
  return vi.fn(async (_key: string) => {
    const a = answers.length > 1 ? answers.shift()! : answers[0];
    if (a instanceof Error) throw a;
    return a;
  });
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2025-06-01T12:00:00Z"));
});
afterEach(() => {
  vi.useRealTimers();
});

describe("renewalDelay", () => {
  it("renews a minute before expiry, or half way through a short lifetime", () => {
    expect(renewalDelay(3_600_000)).toBe(3_540_000);
    expect(renewalDelay(90_000)).toBe(45_000);
    expect(renewalDelay(0)).toBe(0);
  });
});

describe("TokenStore", () => {
  it("open mode needs no token", async () => {
    const store = new TokenStore(exchanger(token()), memoryStorage());
    await store.start("open");
    expect(store.getState()).toEqual({ status: "open" });
    expect(await store.token()).toBeNull();
  });

  it("token mode without a kept key asks to sign in", async () => {
    const store = new TokenStore(exchanger(token()), memoryStorage());
    await store.start("token");
    expect(store.getState()).toEqual({ status: "signedOut" });
    await expect(store.token()).rejects.toMatchObject({ status: 401 });
  });

  it("signs in, keeps the key, and serves the token from memory", async () => {
    const storage = memoryStorage();
    const exchange = exchanger(token());
    const store = new TokenStore(exchange, storage);
    const seen: string[] = [];
    store.subscribe(() => seen.push(store.getState().status));
    await store.signIn("pulse_abc");
    expect(storage.value).toBe("pulse_abc");
    expect(store.getState()).toMatchObject({ status: "signedIn", role: "analyst", keyId: "k1", expiresAt: Date.now() + 3_600_000 });
    expect(seen).toEqual(["signingIn", "signedIn"]);
    const first = await store.token();
    expect(await store.token()).toBe(first);
    expect(exchange).toHaveBeenCalledTimes(1);
    store.dispose();
  });

  it("a kept key signs in again on start (a reload)", async () => {
    const exchange = exchanger(token("admin"));
    const store = new TokenStore(exchange, memoryStorage("pulse_kept"));
    const started = store.start("token");
    expect(store.getState()).toEqual({ status: "signingIn", restoring: true });
    await started;
    expect(exchange).toHaveBeenCalledWith("pulse_kept");
    expect(store.getState()).toMatchObject({ status: "signedIn", role: "admin" });
    store.dispose();
  });

  it("an editor's key signs in: editors read what analysts read, and write topics", async () => {
    const store = new TokenStore(exchanger(token("editor")), memoryStorage());
    await store.signIn("pulse_editor");
    expect(store.getState()).toMatchObject({ status: "signedIn", role: "editor" });
    expect((["ingest", "analyst", "editor", "admin"] as const).map(mayRead)).toEqual([false, true, true, true]);
    expect((["ingest", "analyst", "editor", "admin"] as const).map(mayEditTopics)).toEqual([false, false, true, true]);
    store.dispose();
  });

  it("refuses a key whose role cannot read, and keeps nothing", async () => {
    const storage = memoryStorage();
    const store = new TokenStore(exchanger(token("ingest")), storage);
    await expect(store.signIn("pulse_ingest")).rejects.toMatchObject({ status: 403 });
    expect(storage.value).toBeNull();
    const state = store.getState();
    expect(state.status).toBe("signedOut");
    expect(state.status === "signedOut" && state.notice?.message).toMatch(/This key's role cannot read the dashboard.*ingest.*analyst, editor or admin/);
    await expect(store.token()).rejects.toBeInstanceOf(ApiError);
  });

  it("says why a key was refused: invalid, forbidden, rate-limited", () => {
    const now = Date.now();
    expect(signInNotice(new ApiError(401, "invalid_api_key", "invalid API key")).message).toMatch(/Invalid API key.*invalid API key/);
    expect(signInNotice(new ApiError(403, "forbidden", "no")).message).toMatch(/role cannot read the dashboard/);
    const limited = signInNotice(new ApiError(429, "rate_limited", "slow down", 30), now);
    expect(limited).toEqual({ message: "Too many sign-in attempts: try again in 30 s.", retryAt: now + 30_000 });
    expect(signInNotice(new TypeError("Failed to fetch")).message).toMatch(/Could not reach the server/);
  });

  it("renews about a minute before expiry, and again after each renewal", async () => {
    const exchange = exchanger(token("analyst"), token("analyst"), token("analyst"));
    const store = new TokenStore(exchange, memoryStorage());
    await store.signIn("pulse_abc");
    const first = await store.token();
    await vi.advanceTimersByTimeAsync(3_540_000 - 1);
    expect(exchange).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(exchange).toHaveBeenCalledTimes(2);
    const second = await store.token();
    expect(second).not.toBe(first);
    expect(store.getState()).toMatchObject({ status: "signedIn", expiresAt: Date.now() + 3_600_000 });
    await vi.advanceTimersByTimeAsync(3_540_000);
    expect(exchange).toHaveBeenCalledTimes(3);
    store.dispose();
  });

  it("a scheduled renewal that fails for a passing reason is tried again before expiry", async () => {
    const exchange = exchanger(token("analyst", 120), new TypeError("network down"), token("analyst", 120));
    const store = new TokenStore(exchange, memoryStorage());
    await store.signIn("pulse_abc");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(exchange).toHaveBeenCalledTimes(2);
    expect(store.getState().status).toBe("signedIn");
    await vi.advanceTimersByTimeAsync(RENEW_RETRY_MS);
    expect(exchange).toHaveBeenCalledTimes(3);
    expect(store.getState()).toMatchObject({ status: "signedIn", expiresAt: Date.now() + 120_000 });
    store.dispose();
  });

  it("a scheduled renewal the server refuses ends the session", async () => {
    const storage = memoryStorage();
    const exchange = exchanger(token(), new ApiError(401, "revoked_api_key", "the API key was revoked"));
    const store = new TokenStore(exchange, storage);
    await store.signIn("pulse_abc");
    await vi.advanceTimersByTimeAsync(3_540_000);
    const state = store.getState();
    expect(state.status).toBe("signedOut");
    expect(state.status === "signedOut" && state.notice?.message).toMatch(/could not be renewed.*revoked/);
    expect(storage.value).toBeNull();
  });

  it("an expired token is renewed before use, once for concurrent callers", async () => {
    const exchange = exchanger(token("analyst", 60), token("analyst", 60));
    const store = new TokenStore(exchange, memoryStorage());
    await store.signIn("pulse_abc");
    const old = await store.token();
    exchange.mockClear();
    // The clock jumps without the renewal timer firing: a laptop that slept through it.
    vi.setSystemTime(Date.now() + 60_000 - EXPIRY_MARGIN_MS);
    const [a, b, c] = await Promise.all([store.token(), store.token(), store.renew()]);
    expect(exchange).toHaveBeenCalledTimes(1);
    expect(a).not.toBe(old);
    expect(a).toBe(b);
    expect(b).toBe(c);
    store.dispose();
  });

  it("a renewal that fails ends the session and says why", async () => {
    const exchange = exchanger(token(), new ApiError(429, "rate_limited", "too many", 12));
    const store = new TokenStore(exchange, memoryStorage());
    await store.signIn("pulse_abc");
    await expect(store.renew()).rejects.toMatchObject({ status: 429 });
    const state = store.getState();
    expect(state.status).toBe("signedOut");
    expect(state.status === "signedOut" && state.notice).toEqual({
      message: "Your session could not be renewed. Too many sign-in attempts: try again in 12 s.",
      retryAt: Date.now() + 12_000,
    });
  });

  it("sign-out forgets the key and the token and stops renewing", async () => {
    const storage = memoryStorage();
    const exchange = exchanger(token());
    const store = new TokenStore(exchange, storage);
    await store.signIn("pulse_abc");
    store.signOut();
    expect(store.getState()).toEqual({ status: "signedOut", notice: undefined });
    expect(storage.value).toBeNull();
    await expect(store.token()).rejects.toMatchObject({ status: 401 });
    await vi.advanceTimersByTimeAsync(7_200_000);
    expect(exchange).toHaveBeenCalledTimes(1);
  });

  it("a renewal that returns after sign-out is dropped", async () => {
    let answer!: (t: TokenResponse) => void;
    const exchange = vi.fn(async () => token());
    const store = new TokenStore(exchange, memoryStorage());
    await store.signIn("pulse_abc");
    exchange.mockImplementationOnce(() => new Promise((r) => (answer = r)));
    const renewal = store.renew();
    store.signOut();
    answer(token());
    await expect(renewal).rejects.toMatchObject({ status: 401 });
    expect(store.getState().status).toBe("signedOut");
  });

  it("an open server that starts asking for credentials sends the page to sign in", async () => {
    const store = new TokenStore(exchanger(token()), memoryStorage());
    await store.start("open");
    await expect(store.renew()).rejects.toBeInstanceOf(ApiError);
    expect(store.getState()).toMatchObject({ status: "signedOut", notice: { message: "The server now requires signing in." } });
  });
});

describe("exchangeKey", () => {
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

  it("posts the key and returns the token", async () => {
    const t = token();
    const fetchFn = vi.fn(async () => json(200, t));
    expect(await exchangeKey("pulse_x", fetchFn)).toEqual(t);
    expect(fetchFn).toHaveBeenCalledWith("/api/v1/auth/token", expect.objectContaining({ method: "POST", body: '{"api_key":"pulse_x"}' }));
  });

  it("rejects with the server's code, and the wait on a 429", async () => {
    const refused = json(401, { error: { code: "invalid_api_key", message: "invalid API key", details: {} } });
    await expect(exchangeKey("bad", async () => refused)).rejects.toMatchObject({ status: 401, code: "invalid_api_key" });
    const limited = json(429, { error: { code: "rate_limited", message: "slow down", details: {} } }, { "retry-after": "17" });
    await expect(exchangeKey("bad", async () => limited)).rejects.toMatchObject({ status: 429, retryAfter: 17 });
  });

  it("rejects a token response it does not understand", async () => {
    await expect(exchangeKey("k", async () => json(200, { access_token: "x", role: "root" }))).rejects.toMatchObject({ code: "bad_response" });
  });
});
