import { describe, expect, it } from "vitest";
import { actionFor, advances, calibrationText, KEYS, relevanceText } from "./review";

describe("review keys", () => {
  it("give one label per key, relevance only in a topic's queue", () => {
    expect(actionFor("a", true)).toEqual({ type: "label", kind: "relevance", value: "related" });
    expect(actionFor("x", true)).toEqual({ type: "label", kind: "relevance", value: "unrelated" });
    expect(actionFor("a", false)).toBeUndefined();
    expect(actionFor("3", false)).toEqual({ type: "label", kind: "sentiment", value: "positive" });
    expect(actionFor("B", false)).toEqual({ type: "label", kind: "spam", value: "bot" });
    expect(actionFor("ArrowRight", false)).toEqual({ type: "next" });
    expect(actionFor("ArrowLeft", true)).toEqual({ type: "previous" });
    expect(actionFor("q", true)).toBeUndefined();
    expect(actionFor("Enter", true)).toBeUndefined();
  });

  it("bind each key once", () => {
    const keys = KEYS.map((k) => k.key);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("move on after what the queue asked for, not after a tag or a note", () => {
    expect(advances("relevance")).toBe(true);
    expect(advances("sentiment")).toBe(true);
    expect(advances("tag")).toBe(false);
    expect(advances("note")).toBe(false);
    expect(advances("spam")).toBe(false);
  });
});

describe("a topic's relevance", () => {
  it("says what it learned and what it filters", () => {
    const base = { topic_id: 4, threshold: 0.5, related: 3, unrelated: 1, kept_posts: 40, filtered_posts: 0, models: [] };
    expect(relevanceText({ ...base, model_id: null, waiting_for: "3 related and 1 unrelated labels: a model needs at least 5 of each" })).toBe(
      "3 related and 1 unrelated labels; waiting for 3 related and 1 unrelated labels: a model needs at least 5 of each; 40 posts counted, 0 filtered",
    );
    const model = { id: 7, topic_id: 4, labels: 12, related: 6, through_label: 30, accuracy: 0.917, incumbent: 0.5, adopted: true, reason: "adopted", created_at: "2026-11-28T10:00:00Z" };
    expect(relevanceText({ ...base, model_id: 7, waiting_for: null, filtered_posts: 18, models: [model] })).toBe(
      "3 related and 1 unrelated labels; model #7 adopted (91.7% right out of fold, against 50%), threshold 0.5; 40 posts counted, 18 filtered",
    );
  });
});

describe("the sentiment calibration", () => {
  const record = {
    id: 4, labels: 200, through_label: 812, macro_recall: 0.812, shipped: 0.745, better: true,
    reason: "better", models: ["minilm-tweets-l4@1.1.1"], created_at: "2026-11-28T12:00:00Z",
  };
  const base = { active_id: null, automatic: true, pending_changes: 0, updated_at: "2026-11-28T12:00:00Z", updated_by: null, calibrations: [] };
  it("says what is in use and what it was measured at", () => {
    expect(calibrationText(base)).toBe("Sentiment: the shipped models");
    expect(calibrationText({ ...base, active_id: 4, calibrations: [record] })).toBe(
      "Sentiment: calibration #4 from 200 labels, 81.2% macro-recall out of fold against the shipped models' 74.5%",
    );
    expect(calibrationText({ ...base, pending_changes: 3, calibrations: [{ ...record, better: false, reason: "20 labels: an adaptation needs at least 30" }] })).toBe(
      "Sentiment: the shipped models (last trained: 20 labels: an adaptation needs at least 30); 3 label changes to learn from",
    );
  });
});
