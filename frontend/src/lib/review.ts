// The review queue's keys: one key per label, so a reviewer works through posts without the
// mouse. Keys act only while the queue has the focus and no text field is being typed in.
import type { CalibrationState, LabelKind, Relevance } from "../api/schemas";

export type ReviewAction =
  | { type: "label"; kind: LabelKind; value: string }
  | { type: "next" }
  | { type: "previous" }
  | { type: "undo" }
  | { type: "write"; kind: "tag" | "note" };

/** Each key, what it does and whether it needs a topic's queue; in the order the help shows. */
export const KEYS: { key: string; says: string; action: ReviewAction; topicOnly?: boolean }[] = [
  { key: "a", says: "about this topic", action: { type: "label", kind: "relevance", value: "related" }, topicOnly: true },
  { key: "x", says: "not about it", action: { type: "label", kind: "relevance", value: "unrelated" }, topicOnly: true },
  { key: "1", says: "negative", action: { type: "label", kind: "sentiment", value: "negative" } },
  { key: "2", says: "neutral", action: { type: "label", kind: "sentiment", value: "neutral" } },
  { key: "3", says: "positive", action: { type: "label", kind: "sentiment", value: "positive" } },
  { key: "s", says: "spam", action: { type: "label", kind: "spam", value: "spam" } },
  { key: "b", says: "bot", action: { type: "label", kind: "spam", value: "bot" } },
  { key: "t", says: "tag", action: { type: "write", kind: "tag" } },
  { key: "n", says: "note", action: { type: "write", kind: "note" } },
  { key: "u", says: "undo my last label", action: { type: "undo" } },
  { key: "j", says: "next", action: { type: "next" } },
  { key: "k", says: "previous", action: { type: "previous" } },
];

const ALIASES: Record<string, string> = { ArrowRight: "j", ArrowLeft: "k" };

/** What `key` does in a topic's queue (`topic`) or in the queue of every post; none for others. */
export function actionFor(key: string, topic: boolean): ReviewAction | undefined {
  const k = ALIASES[key] ?? key.toLowerCase();
  const found = KEYS.find((e) => e.key === k);
  if (!found || (found.topicOnly && !topic)) return undefined;
  return found.action;
}

/** Whether a label moves the reviewer on to the next post: a post's relevance and sentiment are
 * what the queue asked for; tags, notes and spam can come beside them. */
export function advances(kind: LabelKind): boolean {
  return kind === "relevance" || kind === "sentiment";
}

/** What a topic learned from its labels, in one line. */
export function relevanceText(r: Relevance): string {
  const labels = `${r.related} related and ${r.unrelated} unrelated labels`;
  const posts = `${r.kept_posts} posts counted, ${r.filtered_posts} filtered`;
  const adopted = r.models.find((m) => m.id === r.model_id);
  if (!adopted) return `${labels}; waiting for ${r.waiting_for ?? "a model"}; ${posts}`;
  const right = (x: number) => `${Math.round(x * 1000) / 10}%`;
  return `${labels}; model #${adopted.id} adopted (${right(adopted.accuracy)} right out of fold, against ${right(adopted.incumbent)}), threshold ${r.threshold}; ${posts}`;
}

/** The deployment's sentiment calibration, in one line. */
export function calibrationText(c: CalibrationState): string {
  const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
  const inUse = c.calibrations.find((k) => k.id === c.active_id);
  const pending = c.pending_changes > 0 ? `; ${c.pending_changes} label changes to learn from` : "";
  if (c.active_id === null) {
    const newest = c.calibrations[0];
    const last = newest ? ` (last trained: ${newest.reason})` : "";
    return `Sentiment: the shipped models${last}${pending}`;
  }
  if (!inUse) return `Sentiment: calibration #${c.active_id}${pending}`;
  return `Sentiment: calibration #${inUse.id} from ${inUse.labels} labels, ${pct(inUse.macro_recall)} macro-recall out of fold against the shipped models' ${pct(inUse.shipped)}${pending}`;
}
