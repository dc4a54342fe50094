import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { barClass, FacetBars } from "./SearchFacets";

/** Every class name in `html`. */
const classes = (html: string) => [...html.matchAll(/class="([^"]*)"/g)].flatMap((m) => m[1].split(/\s+/));

describe("a facet's bars", () => {
  it("colour the sentiment keys", () => {
    expect(barClass("sentiment", "negative")).toBe("bar-fill facet-sentiment-negative");
    expect(barClass("sentiment", "positive")).toBe("bar-fill facet-sentiment-positive");
  });

  it("never make a producer's label a class", () => {
    // A product (or a language) any ingest key may send, naming styles of the page.
    const hostile = "x panel-chooser-list open-banner";
    for (const facet of ["product", "lang", "platform", "topic", "sentiment"]) expect(barClass(facet, hostile), facet).toBe("bar-fill");
    const html = renderToStaticMarkup(
      createElement(FacetBars, { facet: "product", title: "Product", items: [{ key: hostile, count: 3 }, { key: "pulse-phone", count: 1 }], total: 4, onPick: () => {} }),
    );
    expect(classes(html)).not.toContain("panel-chooser-list");
    expect(classes(html)).not.toContain("open-banner");
    // The label is still shown, as text.
    expect(html).toContain(`<span class="facet-key">${hostile}</span>`);
  });
});
