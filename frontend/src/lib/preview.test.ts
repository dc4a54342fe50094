// The preview while a query is typed (fake timers): debounced, one request at a time, stale
// answers dropped, a 429 retried.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/errors";
import type { TopicPreview } from "../api/schemas";
import { PREVIEW_DEBOUNCE_MS, PreviewRunner, type PreviewState } from "./preview";

const answer = (count: number) => ({ matches: { count } }) as unknown as TopicPreview;

/** A fetch whose answers the test settles by hand, in any order. */
function controlled() {
  const calls: { query: string; signal: AbortSignal; resolve: (p: TopicPreview) => void; reject: (e: unknown) => void }[] = [];
  const fetch = vi.fn(
    (query: string, signal: AbortSignal) =>
      new Promise<TopicPreview>((resolve, reject) => {
        calls.push({ query, signal, resolve, reject });
        signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      }),
  );
  return { fetch, calls };
}

let states: PreviewState[];
const last = () => states[states.length - 1];
beforeEach(() => {
  vi.useFakeTimers();
  states = [];
});
afterEach(() => vi.useRealTimers());

describe("PreviewRunner", () => {
  it("asks once typing pauses, for the latest query only", async () => {
    const { fetch, calls } = controlled();
    const r = new PreviewRunner(fetch, (s) => states.push(s));
    for (const q of ["p", "pu", "pul", "pulse"]) {
      r.set(q);
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(fetch).not.toHaveBeenCalled();
    expect(last()).toMatchObject({ pending: true });
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS);
    expect(calls.map((c) => c.query)).toEqual(["pulse"]);
    calls[0].resolve(answer(3));
    await vi.advanceTimersByTimeAsync(0);
    expect(last()).toEqual({ query: "pulse", preview: answer(3), pending: false });
  });

  it("waits for the running preview, drops its stale answer, then asks for the new query", async () => {
    const { fetch, calls } = controlled();
    const r = new PreviewRunner(fetch, (s) => states.push(s));
    r.set("apple");
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS);
    r.set("apple pie");
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS * 3);
    // Never two at once: the server would refuse the second.
    expect(calls.map((c) => c.query)).toEqual(["apple"]);
    const stale = answer(10);
    calls[0].resolve(stale);
    await vi.advanceTimersByTimeAsync(0);
    expect(states.some((s) => s.preview === stale)).toBe(false);
    expect(calls.map((c) => c.query)).toEqual(["apple", "apple pie"]);
    calls[1].resolve(answer(2));
    await vi.advanceTimersByTimeAsync(0);
    expect(last()).toEqual({ query: "apple pie", preview: answer(2), pending: false });
  });

  it("reports a refusal with the query it was about", async () => {
    const { fetch, calls } = controlled();
    const r = new PreviewRunner(fetch, (s) => states.push(s));
    r.set("(apple");
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS);
    const refused = new ApiError(400, "invalid_topic_query", "not closed", undefined, { position: 6, expected: ")" });
    calls[0].reject(refused);
    await vi.advanceTimersByTimeAsync(0);
    expect(last()).toEqual({ query: "(apple", error: refused, pending: false });
  });

  it("retries a 429 after a pause, then gives up saying so", async () => {
    const { fetch, calls } = controlled();
    const r = new PreviewRunner(fetch, (s) => states.push(s));
    r.set("pulse");
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS);
    calls[0].reject(new ApiError(429, "rate_limited", "one at a time"));
    await vi.advanceTimersByTimeAsync(499);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(2);
    calls[1].resolve(answer(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(last()).toMatchObject({ query: "pulse", preview: answer(1), pending: false });

    r.set("cloud");
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS);
    for (let i = 0; i < 5; i++) {
      calls[calls.length - 1].reject(new ApiError(429, "rate_limited", "one at a time"));
      await vi.advanceTimersByTimeAsync(10_000);
    }
    expect(calls.filter((c) => c.query === "cloud")).toHaveLength(5);
    expect(last()).toMatchObject({ query: "cloud", pending: false, error: { status: 429 } });
  });

  it("clears on a blank query and stops for good", async () => {
    const { fetch, calls } = controlled();
    const r = new PreviewRunner(fetch, (s) => states.push(s));
    r.set("pulse");
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS);
    r.set("  ");
    expect(last()).toEqual({ query: "  ", pending: false });
    r.set("cloud");
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS);
    r.stop();
    expect(calls[0].signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(PREVIEW_DEBOUNCE_MS * 4);
    const before = states.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(states.length).toBe(before);
    expect(calls.map((c) => c.query)).toEqual(["pulse"]);
  });
});
