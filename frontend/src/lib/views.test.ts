import { describe, expect, it } from "vitest";
import { parseFilters, filtersToSearch } from "./filters";
import { filtersOf, shows, stateOf, unchanged } from "./views";
import { periodBucket } from "../api/client";

describe("saved views", () => {
  it("keep the dashboard's state and give it back", () => {
    const filters = parseFilters("?topic=7&platform=reddit&city=Lyon&window=1h&panels=overall,trend");
    const state = stateOf(filters);
    expect(state).toEqual({ topic: 7, filters: { platform: "reddit", city: "Lyon" }, window: "1h", panels: ["overall", "trend"] });
    const back = filtersOf(3, state);
    expect(back).toEqual({ ...filters, savedView: "3" });
    expect(unchanged(back, state)).toBe(true);
    expect(unchanged({ ...back, city: "Paris" }, state)).toBe(false);
    expect(shows(back, "trend")).toBe(true);
    expect(shows(back, "stream")).toBe(false);
    expect(shows(parseFilters(""), "stream")).toBe(true);
  });

  it("take a digest's period over the view's window", () => {
    const state = stateOf(parseFilters("?window=24h"));
    const f = filtersOf(4, state, { since: "2026-11-02T07:00:00Z", until: "2026-11-09T07:00:00Z" });
    expect(f.since).toBe("2026-11-02T07:00:00Z");
    expect(filtersToSearch(f)).toBe("since=2026-11-02T07%3A00%3A00Z&until=2026-11-09T07%3A00%3A00Z&saved_view=4");
    expect(stateOf(f)).toEqual({ filters: {}, from: "2026-11-02T07:00:00Z", to: "2026-11-09T07:00:00Z", panels: [] });
    // The digest's period over the view is the view, not a change to it.
    expect(unchanged(f, state)).toBe(true);
    expect(unchanged({ ...f, platform: "reddit" }, state)).toBe(false);
  });

  it("leave out a shared view's labels that no post holds", () => {
    // Anyone who may read may share a view: one filtered on "pulse\u200bphone" would show an
    // empty dashboard under a filter that reads "pulsephone".
    const state = { filters: { product: "pulse\u200Bphone", channel: "\u202Etroppus", city: "Lyon" }, window: "1h" as const, panels: [] };
    expect(filtersOf(5, state)).toEqual({ window: "1h", city: "Lyon", savedView: "5" });
  });

  it("ignore periods and panels the API would refuse", () => {
    const f = parseFilters("?since=2026-11-09T00:00:00Z&until=2026-11-02T00:00:00Z&panels=Overall,<x>,trend,trend&saved_view=abc");
    expect(f.since).toBeUndefined();
    expect(f.panels).toEqual(["trend"]);
    expect(f.savedView).toBeUndefined();
    expect(parseFilters("?since=yesterday&until=2026-11-02T00:00:00Z").since).toBeUndefined();
  });
});

describe("a period's trend", () => {
  it("is drawn in at most 1,500 buckets", () => {
    expect(periodBucket("2026-11-02T07:00:00Z", "2026-11-03T07:00:00Z")).toBe("1m");
    expect(periodBucket("2026-11-02T07:00:00Z", "2026-11-05T07:00:00Z")).toBe("5m");
    expect(periodBucket("2026-11-02T07:00:00Z", "2026-11-09T07:00:00Z")).toBe("1h");
  });
});
