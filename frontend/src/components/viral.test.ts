import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import type { TrendingPostsResponse } from "../api/schemas";
import { ViralPanel } from "./Viral";

const listing: TrendingPostsResponse = JSON.parse(readFileSync(join(import.meta.dirname, "../api/fixtures/trending-posts.json"), "utf8"));

describe("a viral post's text", () => {
  it("is isolated from the labels after it", () => {
    const v = { ...listing.items[0], product: "enohpeslup", hashtags: ["#refund"] };
    // A right-to-left override the text never closes: unisolated, it would show the product
    // after it as "pulsephone" and the hashtag as "dnufer#".
    const text = "Great phone \u202E";
    const html = renderToStaticMarkup(createElement(ViralPanel, { viral: [v], texts: new Map([[v.post_id, text]]), terms: undefined }));
    const isolated = html.match(/<bdi[^>]*>([^<]*)<\/bdi>/);
    expect(isolated?.[1]).toBe(text);
    // The labels come after the isolate closes, outside it.
    const after = html.slice(html.indexOf("</bdi>"));
    expect(after).toContain(">enohpeslup<");
    expect(after).toContain(">#refund<");
  });

  it("is its id while the post is not in the stream, isolated all the same", () => {
    const v = listing.items[0];
    const html = renderToStaticMarkup(createElement(ViralPanel, { viral: [v], texts: new Map(), terms: undefined }));
    expect(html.match(/<bdi[^>]*>([^<]*)<\/bdi>/)?.[1]).toBe(v.post_id);
  });
});
