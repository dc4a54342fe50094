// Signing in: the server's authentication mode, the exchange of an API key for a short-lived
// access token, and the token store every REST call and the WebSocket take their credentials
// from. Payloads are checked by hand here rather than with the zod schemas: zod stays out of
// the bundle, and its start-up probe for `new Function` would be reported as a violation of
// the server's Content-Security-Policy (`script-src 'self'`, no eval).
import { ApiError, apiError } from "./errors";
import type { AuthStatus, Role, TokenResponse } from "./schemas";

/** How long before expiry a token is renewed (at most half its lifetime, for short ones). */
export const RENEW_BEFORE_MS = 60_000;
/** A token this close to expiry is renewed before use rather than sent and refused. */
export const EXPIRY_MARGIN_MS = 5_000;
/** Wait before trying again when a scheduled renewal failed for a passing reason (network, 5xx, 429). */
export const RENEW_RETRY_MS = 15_000;
/** The longest delay `setTimeout` keeps (about 24.8 days); longer ones would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The start of what the sign-in screen says when a key's role may not read. */
export const ROLE_REFUSED = "This key's role cannot read the dashboard";

/** Why the sign-in screen is shown; `retryAt` (ms since the epoch) when the server asked to wait. */
export interface Notice {
  message: string;
  retryAt?: number;
}

/** Where the session stands, as the page renders it. */
export type SessionState =
  | { status: "checking" }
  | { status: "open" }
  | { status: "signedOut"; notice?: Notice }
  | { status: "signingIn"; restoring: boolean }
  | { status: "signedIn"; role: Role; keyId: string; expiresAt: number };

/** Where the API key is kept between reloads; injectable so the tests need no browser. */
export interface KeyStorage {
  get(): string | null;
  set(key: string): void;
  clear(): void;
}

/**
 * The API key in this tab's sessionStorage, so that a reload signs in again and tokens can be
 * renewed without asking. The tradeoff: the key does not expire, unlike the token, and any
 * script running on this origin could read it. We accept that because the server's CSP only
 * lets the dashboard's own scripts run, sessionStorage is per tab and gone when the tab closes,
 * and "Sign out" removes it. Keeping the key in memory only would mean pasting it on every reload.
 */
export function tabStorage(name = "pulse-api-key"): KeyStorage {
  // Storage can be disabled or full; the session then lasts as long as the page.
  let memory: string | null = null;
  return {
    get() {
      try {
        return sessionStorage.getItem(name) ?? memory;
      } catch {
        return memory;
      }
    },
    set(key) {
      memory = key;
      try {
        sessionStorage.setItem(name, key);
      } catch {
        /* kept in memory only */
      }
    },
    clear() {
      memory = null;
      try {
        sessionStorage.removeItem(name);
      } catch {
        /* nothing stored */
      }
    },
  };
}

/** Exchanges an API key for an access token. */
export type Exchange = (apiKey: string) => Promise<TokenResponse>;

const roles: readonly string[] = ["ingest", "analyst", "editor", "admin"] satisfies Role[];

/** The roles that read the dashboard: every one but `ingest`. */
export function mayRead(role: Role): boolean {
  return role === "analyst" || role === "editor" || role === "admin";
}

/** The roles that create, edit and delete topics (an open server lets anyone). */
export function mayEditTopics(role: Role): boolean {
  return role === "editor" || role === "admin";
}

/** What the sign-in screen asks for. */
export const READER_ROLES = "the analyst, editor or admin role";

function isTokenResponse(v: unknown): v is TokenResponse {
  if (typeof v !== "object" || v === null) return false;
  const t = v as Record<string, unknown>;
  return (
    typeof t.access_token === "string" && t.access_token !== "" &&
    typeof t.expires_in === "number" && t.expires_in > 0 &&
    typeof t.role === "string" && roles.includes(t.role) &&
    typeof t.key_id === "string"
  );
}

/** `POST /api/v1/auth/token`: a refusal rejects with the server's `ApiError` (401, 403, 429). */
export async function exchangeKey(apiKey: string, fetchFn: typeof fetch = (i, o) => fetch(i, o)): Promise<TokenResponse> {
  const res = await fetchFn("/api/v1/auth/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: apiKey }),
  });
  if (!res.ok) throw await apiError(res);
  const body: unknown = await res.json();
  if (!isTokenResponse(body)) throw new ApiError(res.status, "bad_response", "the server's token response was not understood");
  return body;
}

/** `GET /api/v1/auth/status`: whether the server asks for credentials at all. */
export async function fetchAuthStatus(fetchFn: typeof fetch = (i, o) => fetch(i, o)): Promise<AuthStatus> {
  const res = await fetchFn("/api/v1/auth/status");
  if (!res.ok) throw await apiError(res);
  const body = (await res.json()) as AuthStatus;
  if (body?.mode !== "open" && body?.mode !== "token") {
    throw new ApiError(res.status, "bad_response", "the server's authentication status was not understood");
  }
  return body;
}

/** What the sign-in screen says about a failed sign-in or renewal. */
export function signInNotice(e: unknown, now: number = Date.now()): Notice {
  if (e instanceof ApiError) {
    switch (e.status) {
      case 401:
        return { message: `Invalid API key: the server refused it (${e.message}).` };
      case 403:
        return { message: e.code === "role" ? e.message : `${ROLE_REFUSED}: use a key with ${READER_ROLES}.` };
      case 429: {
        const wait = e.retryAfter ?? 60;
        return { message: `Too many sign-in attempts: try again in ${wait} s.`, retryAt: now + wait * 1000 };
      }
      default:
        return { message: `Could not sign in: ${e.message}.` };
    }
  }
  return { message: `Could not reach the server: ${(e as Error)?.message ?? String(e)}.` };
}

/** When to renew a token that lives `lifetimeMs` from now: a minute (or half its life) early. */
export function renewalDelay(lifetimeMs: number): number {
  return Math.max(0, lifetimeMs - Math.min(RENEW_BEFORE_MS, lifetimeMs / 2));
}

const signedOutError = () => new ApiError(401, "signed_out", "not signed in");

/**
 * The session: the access token and its expiry in memory, the API key in `storage`. Renews
 * the token shortly before it expires, and on demand (after a 401 or a WebSocket close 4001)
 * once for any number of callers; when a renewal fails the session ends and the sign-in
 * screen says why. An open server needs none of it: `token()` is then null.
 */
export class TokenStore {
  private state: SessionState = { status: "checking" };
  private readonly listeners = new Set<() => void>();
  private current: { token: string; expiresAt: number } | null = null;
  private renewal: Promise<string> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped by every sign-in and sign-out, so an exchange that outlived its session is dropped. */
  private generation = 0;

  constructor(
    private readonly exchange: Exchange,
    private readonly storage: KeyStorage,
    private readonly now: () => number = Date.now,
  ) {}

  /** For `useSyncExternalStore`. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** For `useSyncExternalStore`: the same object until the state changes. */
  getState = (): SessionState => this.state;

  /** Starts in the server's mode; in token mode signs in again with the key this tab kept. */
  async start(mode: AuthStatus["mode"]): Promise<void> {
    if (mode === "open") {
      this.generation++;
      this.reset();
      this.set({ status: "open" });
      return;
    }
    if (this.state.status !== "checking" && this.state.status !== "open") return;
    const key = this.storage.get();
    if (!key) {
      this.set({ status: "signedOut" });
      return;
    }
    await this.signIn(key, true).catch(() => {
      /* the sign-in screen shows why */
    });
  }

  /**
   * Exchanges `apiKey` for a token and keeps both; rejects, with the reason on screen, when
   * refused. `restoring`: the key is the one this tab kept, not one just typed.
   */
  async signIn(apiKey: string, restoring = false): Promise<void> {
    const gen = ++this.generation;
    this.reset();
    this.set({ status: "signingIn", restoring });
    try {
      const token = await this.fetchToken(apiKey);
      if (gen !== this.generation) return;
      this.storage.set(apiKey);
      this.accept(token);
    } catch (e) {
      if (gen !== this.generation) return;
      this.storage.clear();
      this.set({ status: "signedOut", notice: signInNotice(e, this.now()) });
      throw e;
    }
  }

  /** Forgets the key and the token; `reason` is shown on the sign-in screen. */
  signOut(reason?: string | Notice): void {
    this.generation++;
    this.reset();
    this.storage.clear();
    this.set({ status: "signedOut", notice: typeof reason === "string" ? { message: reason } : reason });
  }

  /** The bearer token to send: null on an open server, renewed first when (nearly) expired. */
  async token(): Promise<string | null> {
    if (this.state.status === "open") return null;
    const c = this.current;
    if (c && this.now() < c.expiresAt - EXPIRY_MARGIN_MS) return c.token;
    return this.renew();
  }

  /**
   * A fresh token after the server refused the current one (a 401, a close 4001). When that
   * fails the session ends: back to the sign-in screen, saying why.
   */
  async renew(): Promise<string> {
    if (this.state.status === "open") {
      // The server asked for credentials after all: it restarted with authentication.
      this.signOut("The server now requires signing in.");
      throw signedOutError();
    }
    if (this.state.status !== "signedIn") throw signedOutError();
    const gen = this.generation;
    try {
      return await this.refresh();
    } catch (e) {
      if (gen === this.generation) this.signOut(this.renewalFailed(e));
      throw e;
    }
  }

  /** Clears the timer; for tests and page teardown. */
  dispose(): void {
    this.reset();
  }

  private renewalFailed(e: unknown): Notice {
    const notice = signInNotice(e, this.now());
    return { ...notice, message: `Your session could not be renewed. ${notice.message}` };
  }

  private set(state: SessionState): void {
    this.state = state;
    for (const listener of this.listeners) listener();
  }

  private reset(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.current = null;
    this.renewal = null;
  }

  private async fetchToken(apiKey: string): Promise<TokenResponse> {
    const token = await this.exchange(apiKey);
    if (!mayRead(token.role)) {
      throw new ApiError(403, "role", `${ROLE_REFUSED}: it has the ${token.role} role; use a key with ${READER_ROLES}.`);
    }
    return token;
  }

  private accept(token: TokenResponse): void {
    // The expiry on this clock, from `expires_in`: `expires_at` would carry any skew between
    // the server's clock and this one.
    const lifetime = token.expires_in * 1000;
    const expiresAt = this.now() + lifetime;
    this.current = { token: token.access_token, expiresAt };
    this.schedule(renewalDelay(lifetime));
    this.set({ status: "signedIn", role: token.role, keyId: token.key_id, expiresAt });
  }

  /** One exchange of the kept key at a time, whoever asks. */
  private refresh(): Promise<string> {
    if (!this.renewal) {
      const gen = this.generation;
      const p = (async () => {
        const key = this.storage.get();
        if (!key) throw signedOutError();
        const token = await this.fetchToken(key);
        if (gen !== this.generation) throw signedOutError();
        this.accept(token);
        return token.access_token;
      })();
      const done = () => {
        if (this.renewal === p) this.renewal = null;
      };
      p.then(done, done);
      this.renewal = p;
    }
    return this.renewal;
  }

  private schedule(delay: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.renewOnSchedule(), Math.min(delay, MAX_TIMEOUT_MS));
  }

  private async renewOnSchedule(): Promise<void> {
    this.timer = null;
    const gen = this.generation;
    try {
      await this.refresh();
    } catch (e) {
      if (gen !== this.generation) return;
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        this.signOut(this.renewalFailed(e));
        return;
      }
      // A passing failure: try again while the token still works; after that the next call
      // renews on demand, and ends the session if that fails too.
      const left = (this.current?.expiresAt ?? 0) - EXPIRY_MARGIN_MS - this.now();
      if (left > 0) this.schedule(Math.min(RENEW_RETRY_MS, left));
    }
  }
}

/** The page's session. */
export const session = new TokenStore((key) => exchangeKey(key), tabStorage());
