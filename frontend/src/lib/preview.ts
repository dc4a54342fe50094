// The preview of a topic query while it is typed: debounced, one request at a time, and only
// the latest query's answer shown. The server runs one preview per caller and answers a second
// with 429, so a new query waits for the running one (whose answer is dropped) instead of
// racing it; a 429 from elsewhere (another tab of the same caller) is retried a few times.
import { ApiError } from "../api/errors";
import type { TopicPreview } from "../api/schemas";

/** Quiet time after the last keystroke before a query is previewed. */
export const PREVIEW_DEBOUNCE_MS = 400;
/** Retries of a preview refused with 429, and the wait before the first (doubling). */
export const PREVIEW_RETRIES = 4;
export const PREVIEW_RETRY_MS = 500;

/** What the preview shows: the query it is about, its answer or refusal, and whether one is coming. */
export interface PreviewState {
  query: string;
  preview?: TopicPreview;
  error?: unknown;
  pending: boolean;
}

export type FetchPreview = (query: string, signal: AbortSignal) => Promise<TopicPreview>;

export class PreviewRunner {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<unknown> | null = null;
  private controller: AbortController | null = null;
  /** The latest query asked for; answers to any other are stale. */
  private wanted = "";
  private state: PreviewState = { query: "", pending: false };

  constructor(
    private readonly fetchPreview: FetchPreview,
    private readonly onState: (state: PreviewState) => void,
    private readonly debounceMs = PREVIEW_DEBOUNCE_MS,
  ) {}

  /** The query changed: preview it once typing pauses (a blank query clears the preview). */
  set(query: string): void {
    if (query === this.wanted) return;
    this.wanted = query;
    this.clearTimer();
    if (!query.trim()) {
      this.emit({ query, pending: false });
      return;
    }
    // The last answer stays on screen, marked as pending, until the new one comes.
    this.emit({ ...this.state, pending: true });
    this.timer = setTimeout(() => void this.run(query, 0), this.debounceMs);
  }

  /** Stops for good: nothing more is asked or reported, and a running request is aborted. */
  stop(): void {
    this.wanted = "\u0000stopped";
    this.clearTimer();
    this.controller?.abort();
  }

  private async run(query: string, attempt: number): Promise<void> {
    this.timer = null;
    if (query !== this.wanted) return;
    // One at a time: wait for the running request; its answer is dropped if stale.
    while (this.running) await this.running.catch(() => {});
    if (query !== this.wanted || this.timer) return;
    const controller = new AbortController();
    this.controller = controller;
    const request = this.fetchPreview(query, controller.signal);
    this.running = request;
    try {
      const preview = await request;
      if (query === this.wanted) this.emit({ query, preview, pending: false });
    } catch (error) {
      if (query !== this.wanted) return;
      if (error instanceof ApiError && error.status === 429 && attempt < PREVIEW_RETRIES) {
        const wait = error.retryAfter !== undefined ? Math.min(error.retryAfter * 1000, 5000) : PREVIEW_RETRY_MS * 2 ** attempt;
        this.timer = setTimeout(() => void this.run(query, attempt + 1), wait);
        return;
      }
      this.emit({ query, error, pending: false });
    } finally {
      if (this.running === request) this.running = null;
      if (this.controller === controller) this.controller = null;
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private emit(state: PreviewState): void {
    this.state = state;
    this.onState(state);
  }
}
