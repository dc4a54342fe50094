// A hit's text cut at the API's highlights (code points, not UTF-16 units), marked in whole
// user-perceived characters, rendered as text; and the volume chart's buckets.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import type { SearchPage } from "../api/schemas";
import { HighlightedText, SearchHitRow } from "../components/SearchHits";
import { fillBuckets, highlightSegments, type Segment } from "./searchResults";

/** The marked parts only. */
const marked = (segments: Segment[]) => segments.filter((s) => s.hit).map((s) => s.text);
const html = (text: string, highlights: number[][]) => renderToStaticMarkup(createElement(HighlightedText, { text, highlights }));

describe("a hit's text cut at its highlights", () => {
  it("marks the spans, keeping the text around them", () => {
    expect(highlightSegments("Refund my money now", [[0, 6], [10, 15]])).toEqual([
      { text: "Refund", hit: true },
      { text: " my ", hit: false },
      { text: "money", hit: true },
      { text: " now", hit: false },
    ]);
    expect(highlightSegments("no match here", [])).toEqual([{ text: "no match here", hit: false }]);
    expect(highlightSegments("", [[0, 3]])).toEqual([{ text: "", hit: false }]);
  });

  it("counts code points, as the API does, not UTF-16 units", () => {
    // Each 🔥 is two UTF-16 units and one character: "refund" starts at 3, not 5.
    const text = "🔥🔥 refund please";
    expect(marked(highlightSegments(text, [[3, 9]]))).toEqual(["refund"]);
    expect(text.slice(3, 9)).not.toBe("refund");
    // Astral letters (mathematical bold) are one character each too.
    expect(marked(highlightSegments("𝐁𝐢𝐠 refund", [[4, 10]]))).toEqual(["refund"]);
  });

  it("marks words in scripts written without spaces, character by character", () => {
    expect(highlightSegments("東京タワーに行った", [[0, 2]])).toEqual([
      { text: "東京", hit: true },
      { text: "タワーに行った", hit: false },
    ]);
    // One token per character: touching spans make one mark.
    expect(marked(highlightSegments("我爱北京天安门", [[2, 3], [3, 4]]))).toEqual(["北京"]);
    expect(marked(highlightSegments("삼성은 좋아요 😀 삼성", [[0, 2], [10, 12]]))).toEqual(["삼성", "삼성"]);
  });

  it("never splits an emoji from its skin tone, a family, a flag or a letter from its accent", () => {
    // 👍 is character 6, its skin tone 7: the server, which ignores skin tones, marks [6, 7).
    expect(marked(highlightSegments("great 👍🏽 job", [[6, 7]]))).toEqual(["👍🏽"]);
    // A family is five code points joined; a flag two regional indicators.
    expect(marked(highlightSegments("👨‍👩‍👧 family", [[0, 1]]))).toEqual(["👨‍👩‍👧"]);
    expect(marked(highlightSegments("go 🇫🇷 now", [[3, 4]]))).toEqual(["🇫🇷"]);
    // "café" written with a combining accent: the mark takes the accent along.
    expect(marked(highlightSegments("cafe\u0301 au lait", [[0, 4]]))).toEqual(["cafe\u0301"]);
    expect(marked(highlightSegments("❤️ pulse", [[0, 1]]))).toEqual(["❤️"]);
  });

  it("takes overlapping, touching, nested and unsorted spans as disjoint sorted marks", () => {
    const text = "refund requested, refund denied";
    expect(marked(highlightSegments(text, [[0, 6], [3, 9]]))).toEqual(["refund re"]);
    expect(marked(highlightSegments(text, [[0, 16], [2, 4]]))).toEqual(["refund requested"]);
    expect(marked(highlightSegments(text, [[0, 6], [6, 16]]))).toEqual(["refund requested"]);
    expect(marked(highlightSegments(text, [[18, 24], [0, 6]]))).toEqual(["refund", "refund"]);
    expect(marked(highlightSegments(text, [[18, 24], [0, 6], [18, 24]]))).toEqual(["refund", "refund"]);
  });

  it("keeps within the text and ignores spans that mark nothing", () => {
    const text = "refund please";
    expect(marked(highlightSegments(text, [[-5, 6]]))).toEqual(["refund"]);
    expect(marked(highlightSegments(text, [[7, 99]]))).toEqual(["please"]);
    expect(highlightSegments(text, [[50, 60]])).toEqual([{ text, hit: false }]);
    expect(highlightSegments(text, [[4, 4], [6, 2], [Number.NaN, 3], [1]])).toEqual([{ text, hit: false }]);
    expect(marked(highlightSegments(text, [[0.5, 5.5]]))).toEqual(["refund"]);
  });

  it("always puts the whole text back together", () => {
    const cases: [string, number[][]][] = [
      ["🔥🔥 refund please", [[3, 9], [0, 1]]],
      ["東京タワーに行った", [[0, 2], [1, 5], [8, 20]]],
      ["great 👍🏽 job 👨‍👩‍👧", [[6, 7], [11, 12], [0, 99]]],
      ["cafe\u0301", [[3, 4]]],
    ];
    for (const [text, spans] of cases) expect(highlightSegments(text, spans).map((s) => s.text).join("")).toBe(text);
  });
});

describe("a hit rendered", () => {
  it("puts the marks in <mark> and the text as text, never as HTML", () => {
    expect(html("🔥 refund now", [[2, 8]])).toBe("🔥 <mark>refund</mark> now");
    expect(html('<img src=x onerror="alert(1)"> refund', [[31, 37]])).toBe(
      "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; <mark>refund</mark>",
    );
    expect(html("東京タワー", [[0, 2]])).toBe("<mark>東京</mark>タワー");
  });

  it("shows a hit of the sample page with its marks, language, story and topics", () => {
    const page: SearchPage = JSON.parse(readFileSync(join(import.meta.dirname, "../api/fixtures/search.json"), "utf8"));
    const names = new Map([[1, "Pulse Cloud"]]);
    for (const hit of page.items) {
      const out = renderToStaticMarkup(createElement(SearchHitRow, { hit, topicNames: names, stories: new Map() }));
      const marks = [...out.matchAll(/<mark>(.*?)<\/mark>/g)].map((m) => m[1]);
      const chars = Array.from(hit.post.text);
      // Touching spans (one per emoji or CJK character) show as one mark.
      expect(marks.length).toBeGreaterThan(0);
      expect(marks.join("")).toBe(hit.highlights.map(([s, e]) => chars.slice(s, e).join("")).join(""));
      expect(out).toContain(`data-testid="hit-lang"`);
      expect(out).toContain(hit.post.analysis.sentiment.label);
      if (hit.post.story_id !== null) expect(out).toContain(`story: #${hit.post.story_id}`);
      if (hit.post.topics.includes(1)) expect(out).toContain("Pulse Cloud");
    }
  });
});

describe("the volume chart's buckets", () => {
  it("fills the empty hours and days between the counted ones", () => {
    expect(
      fillBuckets([{ at: "2026-11-20T10:00:00Z", count: 3 }, { at: "2026-11-20T13:00:00Z", count: 1 }], "hour"),
    ).toEqual([
      { at: "2026-11-20T10:00:00.000Z", count: 3 },
      { at: "2026-11-20T11:00:00.000Z", count: 0 },
      { at: "2026-11-20T12:00:00.000Z", count: 0 },
      { at: "2026-11-20T13:00:00.000Z", count: 1 },
    ]);
    expect(fillBuckets([{ at: "2026-11-18T00:00:00Z", count: 2 }, { at: "2026-11-20T00:00:00Z", count: 5 }], "day").map((b) => b.count)).toEqual([2, 0, 5]);
    expect(fillBuckets([], "day")).toEqual([]);
  });
  it("keeps the latest buckets when there are too many to draw", () => {
    const out = fillBuckets([{ at: "2020-01-01T00:00:00Z", count: 1 }, { at: "2026-01-01T00:00:00Z", count: 4 }], "day", 10);
    expect(out).toHaveLength(10);
    expect(out.at(-1)).toEqual({ at: "2026-01-01T00:00:00.000Z", count: 4 });
  });
});
