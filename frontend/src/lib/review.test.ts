import { describe, expect, it } from "vitest";
import { actionFor, advances, KEYS } from "./review";

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
