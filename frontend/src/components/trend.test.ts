import { describe, expect, it } from "vitest";
import { trendPoints } from "./Trend";

describe("trend points", () => {
  it("has one point per minute of the last hour, gaps included", () => {
    const now = Date.parse("2026-11-21T10:30:20Z");
    const stats = (posts: number, mean: number) => ({
      posts, toxicity_mean: 0,
      sentiment: { mean, negative: 0, neutral: posts, positive: 0, negative_share: 0, neutral_share: 1, positive_share: 0 },
      churn: { mean: 0, high: 0, high_share: 0 }, emotions: { anger: 0, joy: 0, optimism: 0, sadness: 0 },
      engagement: { likes: 0, shares: 0, comments: 0, views: 0 },
    });
    const points = trendPoints(
      { dimension: "overall", key: "", from: "", to: "", bucket: "1m",
        points: [{ at: "2026-11-21T10:30:00Z", ...stats(5, 0.2) }, { at: "2026-11-21T10:00:00Z", ...stats(2, -0.1) }] },
      now,
    );
    expect(points).toHaveLength(60);
    expect(points.at(-1)).toMatchObject({ at: "2026-11-21T10:30:00.000Z", posts: 5, mean: 0.2 });
    expect(points[0].at).toBe("2026-11-21T09:31:00.000Z");
    expect(points[29]).toMatchObject({ at: "2026-11-21T10:00:00.000Z", posts: 2 });
    expect(points[1].posts).toBe(0);
    expect(Number.isNaN(points[1].mean)).toBe(true);
  });

  it("draws a fixed period in the series' buckets", () => {
    const points = trendPoints(
      { dimension: "overall", key: "", from: "", to: "", bucket: "1h", points: [] },
      0,
      { since: "2026-11-02T07:00:00Z", until: "2026-11-09T07:00:00Z" },
    );
    expect(points).toHaveLength(7 * 24);
    expect(points[0].at).toBe("2026-11-02T07:00:00.000Z");
    expect(points.at(-1)?.at).toBe("2026-11-09T06:00:00.000Z");
  });
});
