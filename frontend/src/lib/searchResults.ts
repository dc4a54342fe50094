// How a search's results show: a hit's text cut at its highlights (the API counts in Unicode
// code points, the page marks whole user-perceived characters), and the facets' time buckets
// with the empty ones filled in. Pure, so it is unit-tested; loaded with the view.

/** A piece of a hit's text: highlighted where the query's words stand. */
export interface Segment {
  text: string;
  hit: boolean;
}

let graphemes: Intl.Segmenter | null | undefined;
/**
 * Code point offsets where a user-perceived character starts (and the text's end), so that a
 * mark never splits an emoji from its skin tone or a letter from its accent.
 */
function graphemeStarts(chars: string[]): Set<number> | undefined {
  if (graphemes === undefined) graphemes = typeof Intl.Segmenter === "function" ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  if (!graphemes) return undefined;
  const starts = new Set<number>();
  let at = 0;
  for (const g of graphemes.segment(chars.join(""))) {
    starts.add(at);
    at += Array.from(g.segment).length;
  }
  starts.add(at);
  return starts;
}

/**
 * `text` cut at `highlights`, spans `[start, end)` in Unicode code points (as the API counts,
 * and as `Array.from` splits a string; not UTF-16 units). Spans are taken as they come: out of
 * order, overlapping, touching, empty or out of range, they still make sorted, disjoint marks
 * within the text, each widened to whole user-perceived characters.
 */
export function highlightSegments(text: string, highlights: readonly (readonly number[])[]): Segment[] {
  const chars = Array.from(text);
  const n = chars.length;
  const starts = highlights.some(([s, e]) => s < e) ? graphemeStarts(chars) : undefined;
  const snapDown = (i: number) => {
    if (starts) while (i > 0 && !starts.has(i)) i--;
    return i;
  };
  const snapUp = (i: number) => {
    if (starts) while (i < n && !starts.has(i)) i++;
    return i;
  };
  const spans = highlights
    .filter((h) => h.length >= 2 && Number.isFinite(h[0]) && Number.isFinite(h[1]))
    .map(([s, e]) => [snapDown(Math.max(0, Math.min(n, Math.floor(s)))), snapUp(Math.max(0, Math.min(n, Math.ceil(e))))] as const)
    .filter(([s, e]) => s < e)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged: [number, number][] = [];
  for (const [s, e] of spans) {
    const last = merged.at(-1);
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  const out: Segment[] = [];
  let at = 0;
  for (const [s, e] of merged) {
    if (s > at) out.push({ text: chars.slice(at, s).join(""), hit: false });
    out.push({ text: chars.slice(s, e).join(""), hit: true });
    at = e;
  }
  if (at < n || out.length === 0) out.push({ text: chars.slice(at).join(""), hit: false });
  return out;
}

/** A facet's buckets with the empty ones between them filled in (at most `max` buckets). */
export function fillBuckets(buckets: readonly { at: string; count: number }[], interval: "hour" | "day", max = 400): { at: string; count: number }[] {
  if (buckets.length === 0) return [];
  const step = interval === "day" ? 86_400_000 : 3_600_000;
  const byAt = new Map(buckets.map((b) => [Math.floor(Date.parse(b.at) / step), b.count]));
  const keys = [...byAt.keys()].sort((a, b) => a - b);
  const first = Math.max(keys[0], keys[keys.length - 1] - max + 1);
  const out: { at: string; count: number }[] = [];
  for (let k = first; k <= keys[keys.length - 1]; k++) out.push({ at: new Date(k * step).toISOString(), count: byAt.get(k) ?? 0 });
  return out;
}
