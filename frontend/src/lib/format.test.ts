import { describe, expect, it } from "vitest";
import { ago, bytes, compact, mood, percent, perMinute, rate, scopeText, score, signed } from "./format";

describe("formatters", () => {
  it("says what a key may send", () => {
    expect(scopeText(null)).toBe("anything");
    expect(scopeText({ platforms: [], products: [], id_prefixes: [] })).toBe("anything");
    expect(scopeText({ platforms: [], products: [], id_prefixes: [], unreadable: true })).toMatch(/^nothing/);
    expect(scopeText({ platforms: ["twitter"], products: ["phone"], id_prefixes: ["tw:", "x:"] })).toBe(
      "twitter; products phone; ids tw:…, x:…",
    );
  });

  it("compacts counts for people", () => {
    expect(compact(0)).toBe("0");
    expect(compact(999)).toBe("999");
    expect(compact(1234)).toBe("1.2k");
    expect(compact(25_600)).toBe("25.6k");
    expect(compact(2_500_000)).toBe("2.5M");
    expect(compact(-1500)).toBe("-1.5k");
    expect(compact(NaN)).toBe("–");
  });
  it("shows shares as whole percentages", () => {
    expect(percent(0.344)).toBe("34%");
    expect(percent(0)).toBe("0%");
    expect(percent(1)).toBe("100%");
    expect(percent(0.001)).toBe("<1%");
    expect(percent(0.996)).toBe("100%");
  });
  it("signs sentiment scores", () => {
    expect(signed(0.123)).toBe("+0.12");
    expect(signed(-0.5)).toBe("−0.50");
    expect(signed(0.001)).toBe("0.00");
    expect(signed(-0.004)).toBe("0.00");
    expect(signed(0.5, 1)).toBe("+0.5");
  });
  it("formats rates", () => {
    expect(rate(2043.4)).toBe("2k/s");
    expect(rate(3)).toBe("3/s");
    expect(rate(0.25)).toBe("0.3/s");
    expect(rate(0)).toBe("0/s");
    expect(rate(30)).toBe("30/s");
  });
  it("says how long ago", () => {
    const now = Date.parse("2026-11-21T10:00:00Z");
    expect(ago("2026-11-21T09:59:55Z", now)).toBe("5s ago");
    expect(ago("2026-11-21T09:55:00Z", now)).toBe("5m ago");
    expect(ago("2026-11-21T07:00:00Z", now)).toBe("3h ago");
    expect(ago("2026-11-18T10:00:00Z", now)).toBe("3d ago");
    expect(ago("2026-11-21T10:00:02Z", now)).toBe("0s ago");
  });
  it("formats sizes and moods", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536)).toBe("1.5 kB");
    expect(bytes(3 * 1024 * 1024)).toBe("3.0 MB");
    expect(mood(-0.08)).toBe("negative");
    expect(mood(0.1)).toBe("neutral");
    expect(mood(0.4)).toBe("positive");
  });
  it("formats virality scores and per-minute rates", () => {
    expect(score(61.24)).toBe("61.2");
    expect(score(0)).toBe("0.0");
    expect(score(NaN)).toBe("–");
    expect(perMinute(12.44)).toBe("12.4/min");
    expect(perMinute(20)).toBe("20/min");
    expect(perMinute(0)).toBe("0/min");
    expect(perMinute(2500)).toBe("2.5k/min");
  });
});
