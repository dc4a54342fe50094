// The WebSocket client: connects, subscribes, reconnects with exponential backoff and
// jitter, resubscribes with the current filter, and hands what arrived to the page in
// batches at most `FLUSH_MS` apart, so a burst of thousands of posts is one render. On a
// server with authentication the URL carries the access token, taken afresh for every
// connection; a close with `TOKEN_EXPIRED` renews the token and reconnects at once.
import { drain, type Batch } from "../state/live";
import type { SubscribeFilter } from "../api/schemas";

/** Longest gap between renders of live data: 10 frames per second at most. */
export const FLUSH_MS = 100;
const PING_MS = 10_000;
/** The close code of a session whose access token expired. */
export const TOKEN_EXPIRED = 4001;

export type ConnectionState =
  | { status: "connecting"; attempt: number }
  | { status: "open"; since: number }
  | { status: "reconnecting"; attempt: number; retryAt: number };

/** Delay before reconnect attempt `attempt` (1-based): 0.5 s doubling to 15 s, ±25% jitter. */
export function backoff(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(15_000, 500 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + random() * 0.5));
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private queue: string[] = [];
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flusher: ReturnType<typeof setInterval> | null = null;
  private pinger: ReturnType<typeof setInterval> | null = null;
  private awaitingPong = false;
  private stopped = false;
  private filter: SubscribeFilter = {};

  /**
   * `url` is asked before every connection (it carries the current token); `renew` gets a
   * fresh token after a `TOKEN_EXPIRED` close.
   */
  constructor(
    private readonly url: () => string | Promise<string>,
    private readonly topics: string[],
    private readonly onBatch: (batch: Batch) => void,
    private readonly onState: (state: ConnectionState) => void,
    private readonly renew: () => Promise<unknown> = async () => {},
  ) {}

  start(filter: SubscribeFilter): void {
    this.filter = filter;
    this.stopped = false;
    this.flusher = setInterval(() => this.flush(), FLUSH_MS);
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.flusher) clearInterval(this.flusher);
    if (this.pinger) clearInterval(this.pinger);
    this.ws?.close(1000);
    this.ws = null;
  }

  /** Replaces the session's filter (the server applies it to every filtered topic). */
  setFilter(filter: SubscribeFilter): void {
    this.filter = filter;
    // Posts queued under the old filter must not show under the new one.
    this.queue = this.queue.filter((f) => !f.startsWith('{"type":"message:new"'));
    this.send({ type: "subscribe", topics: [], filter });
  }

  private send(msg: unknown): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private async connect(): Promise<void> {
    this.onState({ status: "connecting", attempt: this.attempt });
    let url: string;
    try {
      url = await this.url();
    } catch {
      // No token (the session ended or renewal failed): try later, unless stopped meanwhile.
      if (!this.stopped) this.retryLater();
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.awaitingPong = false;
      ws.send(JSON.stringify({ type: "subscribe", topics: this.topics, filter: this.filter }));
      this.onState({ status: "open", since: Date.now() });
      if (this.pinger) clearInterval(this.pinger);
      // Browsers answer the server's pings by themselves but never report a dead peer;
      // an unanswered application ping does.
      this.pinger = setInterval(() => {
        if (this.awaitingPong) {
          ws.close(4000, "no pong");
          return;
        }
        this.awaitingPong = true;
        this.send({ type: "ping" });
      }, PING_MS);
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      if (event.data === '{"type":"pong"}') {
        this.awaitingPong = false;
        return;
      }
      this.awaitingPong = false;
      this.queue.push(event.data);
    };
    ws.onclose = (event) => {
      if (this.pinger) clearInterval(this.pinger);
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      if (event.code === TOKEN_EXPIRED) {
        this.onState({ status: "connecting", attempt: this.attempt });
        this.renew().then(
          () => {
            if (!this.stopped) void this.connect();
          },
          () => {
            if (!this.stopped) this.retryLater();
          },
        );
        return;
      }
      this.retryLater();
    };
    ws.onerror = () => ws.close();
  }

  private retryLater(): void {
    this.attempt += 1;
    const delay = backoff(this.attempt);
    this.onState({ status: "reconnecting", attempt: this.attempt, retryAt: Date.now() + delay });
    this.timer = setTimeout(() => void this.connect(), delay);
  }

  private flush(): void {
    if (this.queue.length === 0) return;
    const frames = this.queue;
    this.queue = [];
    this.onBatch(drain(frames));
  }
}

/**
 * The socket URL of the page's own server, with the access token as a query parameter when
 * there is one: browsers cannot set headers on a WebSocket handshake.
 */
export function socketUrl(loc: Pick<Location, "protocol" | "host"> = window.location, accessToken?: string | null): string {
  const url = `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws`;
  return accessToken ? `${url}?access_token=${encodeURIComponent(accessToken)}` : url;
}
