// What the Topics panel says about a query: its preview in one line, where a refused query
// went wrong, and the API's refusals in words. Pure, so the wording is unit-tested.
import { ApiError } from "../api/errors";
import type { Topic, TopicPreview } from "../api/schemas";
import { compact } from "./format";

/** A rate per hour: 0.25 → "0.3/h", 3 → "3/h", 2043 → "2k/h". */
export function perHour(n: number): string {
  if (!Number.isFinite(n)) return "–";
  if (n > 0 && n < 10) return `${n.toFixed(1).replace(/\.0$/, "")}/h`;
  return `${compact(n)}/h`;
}

const plural = (n: number, one: string, many: string) => `${compact(n)} ${n === 1 ? one : many}`;

/** "12 matches in the last 24 h (0.5/h) · 3 near misses", saying when not every post was read. */
export function previewSummary(p: TopicPreview, hours: number): string {
  const matches = plural(p.matches.count, "match", "matches");
  const misses = plural(p.near_misses.count, "near miss", "near misses");
  const partial = p.complete ? "" : ` (of the newest ${compact(p.scanned)} posts)`;
  return `${matches} in the last ${hours} h${partial} (${perHour(p.matches.per_hour)}) · ${misses}`;
}

/** A refused query cut where it went wrong: `at` is the character at `position` ("" at the end). */
export interface QueryMark {
  before: string;
  at: string;
  after: string;
  position: number;
  expected?: string;
}

/**
 * Where `query` went wrong, from an `invalid_topic_query` refusal of it. The server counts
 * characters as Unicode code points, as `Array.from` splits a string (not UTF-16 units, so an
 * emoji before the error does not shift the mark).
 */
export function queryErrorMark(query: string, e: unknown): QueryMark | undefined {
  if (!(e instanceof ApiError) || e.code !== "invalid_topic_query") return undefined;
  const position = e.details.position;
  if (typeof position !== "number" || !Number.isInteger(position) || position < 0) return undefined;
  const chars = Array.from(query);
  const p = Math.min(position, chars.length);
  const expected = typeof e.details.expected === "string" && e.details.expected ? e.details.expected : undefined;
  return { before: chars.slice(0, p).join(""), at: chars[p] ?? "", after: chars.slice(p + 1).join(""), position: p, expected };
}

/** A failed topic call in words, for the panel. */
export function topicErrorText(e: unknown): string {
  if (!(e instanceof ApiError)) return `Could not reach the server: ${(e as Error)?.message ?? String(e)}.`;
  switch (e.code) {
    case "invalid_topic_query":
      return `The query does not parse: ${e.message}.`;
    case "invalid_topic":
      return `Not saved: ${e.message}.`;
    case "name_taken":
      return `That name is taken: ${e.message}; choose another.`;
    case "limit_reached":
      return `No room for another topic: ${e.message}.`;
    case "rate_limited":
      return "Another preview of yours is still running; try again in a moment.";
  }
  if (e.status === 403) return `Your key's role may not change topics: ask an editor or an admin (${e.message}).`;
  if (e.status === 404) return "This topic no longer exists: someone deleted it.";
  return `The server refused: ${e.message}.`;
}

/** Topic names by id, for the chips on posts; ids of deleted topics have none. */
export function topicNames(topics: Topic[] | undefined): Map<number, string> {
  return new Map((topics ?? []).map((t) => [t.id, t.name]));
}
