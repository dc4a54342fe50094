import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/errors";
import type { TopicPreview } from "../api/schemas";
import { perHour, previewSummary, queryErrorMark, topicErrorText, topicNames } from "./topics";

const refused = (position: unknown, expected: unknown = ")") =>
  new ApiError(400, "invalid_topic_query", "the ( at character 0 is not closed (at character 14)", undefined, { position, expected });

describe("a refused query's mark", () => {
  it("cuts the query at the server's position", () => {
    expect(queryErrorMark("(apple OR pear", refused(14))).toEqual({ before: "(apple OR pear", at: "", after: "", position: 14, expected: ")" });
    expect(queryErrorMark("apple AND AND pie", refused(10, "a term"))).toEqual({
      before: "apple AND ", at: "A", after: "ND pie", position: 10, expected: "a term",
    });
  });
  it("counts characters as code points, as the server does", () => {
    // "🔥" is two UTF-16 units and one character: the mark falls on the ")" that follows it.
    expect(queryErrorMark("🔥) pulse", refused(1))).toMatchObject({ before: "🔥", at: ")", after: " pulse" });
    expect(queryErrorMark("café )", refused(5))).toMatchObject({ before: "café ", at: ")" });
  });
  it("keeps within the query and ignores other errors", () => {
    expect(queryErrorMark("abc", refused(99))).toMatchObject({ before: "abc", at: "", position: 3 });
    expect(queryErrorMark("abc", refused("3"))).toBeUndefined();
    expect(queryErrorMark("abc", refused(-1))).toBeUndefined();
    expect(queryErrorMark("abc", refused(1, ""))?.expected).toBeUndefined();
    expect(queryErrorMark("abc", new ApiError(409, "name_taken", "taken"))).toBeUndefined();
    expect(queryErrorMark("abc", new TypeError("Failed to fetch"))).toBeUndefined();
  });
});

describe("a failed topic call in words", () => {
  it("names the API's refusals", () => {
    expect(topicErrorText(new ApiError(409, "name_taken", "a topic named `Cloud` exists"))).toBe(
      "That name is taken: a topic named `Cloud` exists; choose another.",
    );
    expect(topicErrorText(new ApiError(409, "limit_reached", "there are 10000 topics"))).toMatch(/^No room for another topic/);
    expect(topicErrorText(new ApiError(403, "forbidden", "this route needs the editor role"))).toMatch(/may not change topics/);
    expect(topicErrorText(new ApiError(400, "invalid_topic", "name must be 1 to 200 characters, not blank"))).toBe(
      "Not saved: name must be 1 to 200 characters, not blank.",
    );
    expect(topicErrorText(refused(14))).toMatch(/^The query does not parse: the \( at character 0/);
    expect(topicErrorText(new ApiError(404, "not_found", "no topic 7"))).toMatch(/no longer exists/);
    expect(topicErrorText(new TypeError("Failed to fetch"))).toBe("Could not reach the server: Failed to fetch.");
  });
});

describe("the preview in one line", () => {
  const sample: TopicPreview = JSON.parse(readFileSync(new URL("../api/fixtures/topic-preview.json", import.meta.url), "utf8"));
  it("counts matches and near misses", () => {
    expect(previewSummary(sample, 24)).toBe("64 matches in the last 24 h (2.7/h) · 9 near misses");
    const one = { ...sample, matches: { ...sample.matches, count: 1, per_hour: 1 }, near_misses: { ...sample.near_misses, count: 1 } };
    expect(previewSummary(one, 1)).toBe("1 match in the last 1 h (1/h) · 1 near miss");
  });
  it("says when the newest posts only were read", () => {
    expect(previewSummary({ ...sample, complete: false, scanned: 100_000 }, 168)).toMatch(/last 168 h \(of the newest 100k posts\)/);
  });
  it("formats rates per hour", () => {
    expect([perHour(0), perHour(0.25), perHour(3), perHour(2043)]).toEqual(["0/h", "0.3/h", "3/h", "2k/h"]);
  });
});

describe("topic names for the chips", () => {
  it("maps ids to names", () => {
    const topics = JSON.parse(readFileSync(new URL("../api/fixtures/topics.json", import.meta.url), "utf8")).items;
    const names = topicNames(topics);
    expect(names.get(1)).toBe("Pulse Cloud");
    expect(names.get(4)).toBeUndefined();
    expect(topicNames(undefined).size).toBe(0);
  });
});
