import { describe, expect, it } from "vitest";
import { linePath, niceMax } from "./TrendChart";

describe("volume axis bound", () => {
  it("rounds up to a readable number at every magnitude", () => {
    expect(niceMax(37)).toBe(40);
    expect(niceMax(40)).toBe(40);
    expect(niceMax(1234)).toBe(1500);
    expect(niceMax(9.2)).toBe(10);
    expect(niceMax(0.3)).toBeCloseTo(0.3);
  });

  it("never divides by zero on an empty or broken series", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(Number.NaN)).toBe(1);
    expect(niceMax(-5)).toBe(1);
  });
});

describe("line path", () => {
  const x = (i: number) => i * 10;
  const y = (v: number) => v;

  it("lifts the pen over missing minutes instead of drawing through them", () => {
    expect(linePath([1, 2, Number.NaN, 4, 5], x, y)).toBe("M0.0,1.0L10.0,2.0M30.0,4.0L40.0,5.0");
  });

  it("is empty when nothing is finite", () => {
    expect(linePath([Number.NaN, Number.POSITIVE_INFINITY], x, y)).toBe("");
    expect(linePath([], x, y)).toBe("");
  });
});
