import { describe, expect, it } from "vitest";
import { alertInView, filtersToSearch, parseFilters, trendScope } from "./filters";

describe("filters in the URL", () => {
  it("round-trips", () => {
    const f = { platform: "reddit" as const, product: "pulse-phone", city: "Lyon", window: "1h" as const };
    expect(parseFilters(`?${filtersToSearch(f)}`)).toEqual(f);
  });
  it("leaves the default window out and drops values the API would refuse", () => {
    expect(filtersToSearch({ window: "5m" })).toBe("");
    expect(parseFilters("?platform=myspace&window=2y&product=&channel=%20")).toEqual({ window: "5m" });
    expect(parseFilters(`?country=${"x".repeat(129)}`)).toEqual({ window: "5m" });
  });
  it("encodes labels safely", () => {
    const s = filtersToSearch({ city: "São Paulo & co", window: "5m" });
    expect(parseFilters(s).city).toBe("São Paulo & co");
  });
});

describe("trend scope", () => {
  it("follows the first label filter", () => {
    expect(trendScope({ window: "5m" })).toEqual({ dimension: "overall", partial: false });
    expect(trendScope({ window: "5m", channel: "support" })).toEqual({ dimension: "channel", key: "support", partial: false });
    expect(trendScope({ window: "5m", platform: "reddit", city: "Lyon" })).toEqual({ dimension: "platform", key: "reddit", partial: true });
  });
});

describe("alerts in view (the WebSocket's filter rule)", () => {
  it("shows whole-stream alerts only without filters", () => {
    expect(alertInView({ window: "5m" }, "overall", "")).toBe(true);
    expect(alertInView({ window: "5m", platform: "reddit" }, "overall", "")).toBe(false);
  });
  it("matches an alert's own key", () => {
    expect(alertInView({ window: "5m", platform: "reddit" }, "platform", "reddit")).toBe(true);
    expect(alertInView({ window: "5m", platform: "reddit" }, "platform", "twitter")).toBe(false);
    expect(alertInView({ window: "5m", platform: "reddit", city: "Lyon" }, "platform", "reddit")).toBe(false);
  });
});
