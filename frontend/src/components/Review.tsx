import { useCallback, useRef, useState, type KeyboardEvent } from "react";
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { errorText } from "../api/errors";
import type { Label, LabelKind, ReviewItem, Topic } from "../api/schemas";
import { actionFor, advances, calibrationText, KEYS, relevanceText, type ReviewAction } from "../lib/review";
import { Empty, Panel } from "./Panel";

/** Posts asked for at a time. */
const BATCH = 10;

function describe(l: Label, topics: Map<number, string>): string {
  const about = l.topic_id === null ? "" : ` (${topics.get(l.topic_id) ?? `topic #${l.topic_id}`})`;
  return `${l.kind}: ${l.value}${about}`;
}

/**
 * The review queue: a topic's posts its learned relevance is least sure of, or every post's
 * where sentiment is in doubt, one at a time, each labelled with one key. Posts are claimed for
 * the reviewer, so two reviewers never get the same post; `u` undoes the reviewer's last label.
 */
export function ReviewPanel(props: { topics: Topic[] | undefined; topic?: string }) {
  const [queue, setQueue] = useState(props.topic ?? "");
  const [items, setItems] = useState<ReviewItem[]>();
  const [at, setAt] = useState(0);
  const [given, setGiven] = useState<Label[]>([]);
  const [writing, setWriting] = useState<"tag" | "note">();
  const [text, setText] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const focus = useRef<HTMLDivElement>(null);
  const names = new Map((props.topics ?? []).map((t) => [t.id, t.name]));
  const topicId = queue ? Number(queue) : undefined;
  const current = items?.[at];
  const relevance = useQuery({
    queryKey: ["relevance", topicId],
    queryFn: () => api.relevance(topicId as number),
    enabled: topicId !== undefined,
    refetchInterval: 5_000,
  });
  const calibration = useQuery({
    queryKey: ["calibration"],
    queryFn: () => api.calibration(),
    enabled: topicId === undefined,
    refetchInterval: 5_000,
  });
  const useShipped = async () => {
    try {
      await api.chooseCalibration(null, false);
      await calibration.refetch();
    } catch (e) {
      setError(errorText(e));
    }
  };

  const load = useCallback(async () => {
    setBusy(true);
    try {
      const batch = await api.reviewNext(topicId, BATCH);
      setItems(batch.items);
      setAt(0);
      setError(undefined);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
      focus.current?.focus();
    }
  }, [topicId]);

  const next = useCallback(() => {
    if (!items) return;
    if (at + 1 < items.length) setAt(at + 1);
    else void load();
  }, [items, at, load]);

  const give = async (kind: LabelKind, value: string) => {
    if (!current) return;
    try {
      const label = await api.label({ post_id: current.post.id, kind, value, ...(kind === "relevance" ? { topic_id: topicId } : {}) });
      setGiven((g) => [label, ...g]);
      setItems((list) => list?.map((it, i) => (i === at ? { ...it, labels: [...it.labels, label] } : it)));
      setError(undefined);
      if (advances(kind)) next();
    } catch (e) {
      setError(errorText(e));
    }
  };

  const undo = async () => {
    const last = given[0];
    if (!last) return;
    try {
      await api.undoLabel(last.id);
      setGiven((g) => g.slice(1));
      setItems((list) => list?.map((it) => ({ ...it, labels: it.labels.filter((l) => l.id !== last.id) })));
      setError(undefined);
    } catch (e) {
      setError(errorText(e));
    }
  };

  const act = (action: ReviewAction) => {
    switch (action.type) {
      case "label":
        return void give(action.kind, action.value);
      case "next":
        return next();
      case "previous":
        return setAt((a) => Math.max(0, a - 1));
      case "undo":
        return void undo();
      case "write":
        setText("");
        return setWriting(action.kind);
    }
  };

  const onKey = (e: KeyboardEvent<HTMLDivElement>) => {
    const target = e.target as HTMLElement;
    if (e.metaKey || e.ctrlKey || e.altKey || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) return;
    const action = actionFor(e.key, topicId !== undefined);
    // Undo works on what was given, even once the queue has run dry.
    if (!action || (!current && action.type !== "undo")) return;
    e.preventDefault();
    act(action);
  };

  const submitText = async () => {
    if (!writing || !text.trim()) return;
    await give(writing, text.trim());
    setWriting(undefined);
    focus.current?.focus();
  };

  const relevant = current && topicId !== undefined;
  const filtered = relevant && current.post.filtered_topics.includes(topicId);
  return (
    <Panel id="review" title="Review queue">
      <div className="review" ref={focus} tabIndex={0} onKeyDown={onKey} data-testid="review-panel" aria-label="Review queue: use the keys listed below">
        <div className="small">
          <label>
            Queue{" "}
            <select value={queue} onChange={(e) => { setQueue(e.target.value); setItems(undefined); }} data-testid="review-queue">
              <option value="">every post (sentiment)</option>
              {(props.topics ?? []).map((t) => (
                <option key={t.id} value={String(t.id)}>
                  {t.name}
                </option>
              ))}
            </select>
          </label>{" "}
          <button type="button" className="btn small" onClick={() => void load()} disabled={busy} data-testid="review-start">
            {items ? "Next batch" : "Start"}
          </button>
        </div>
        {topicId !== undefined && relevance.data && (
          <p className="muted small" data-testid="review-relevance" data-filtered={relevance.data.filtered_posts}>
            {relevanceText(relevance.data)}
          </p>
        )}
        {topicId === undefined && calibration.data && (
          <p className="muted small" data-testid="review-calibration" data-active={calibration.data.active_id ?? "none"}>
            {calibrationText(calibration.data)}
            {calibration.data.active_id !== null && (
              <>
                {" "}
                <button type="button" className="btn small" onClick={() => void useShipped()} data-testid="review-calibration-off">
                  Use the shipped models
                </button>
              </>
            )}
          </p>
        )}
        {error && <p className="error small" role="alert" data-testid="review-error">{error}</p>}
        {items && items.length === 0 && <Empty>Nothing to review in this queue now.</Empty>}
        {current && (
          <article className="review-post" data-testid="review-post" data-post-id={current.post.id} data-filtered={filtered ? "yes" : "no"}>
            <p className="muted small">
              {at + 1} of {items?.length} · {current.reason.replaceAll("_", " ")}
              {current.relevance !== null && ` · ${Math.round(current.relevance * 100)}% about the topic`}
              {filtered && <span className="badge" data-testid="review-filtered"> filtered</span>}
            </p>
            <p className="review-text">{current.post.text}</p>
            <p className="muted small">
              {current.post.platform} · @{current.post.author.id} · model: {current.post.analysis.sentiment.label}
              {current.lexicon_sentiment && ` · lexicon: ${current.lexicon_sentiment}`}
            </p>
            {current.labels.length > 0 && (
              <ul className="small" data-testid="review-labels">
                {current.labels.map((l) => (
                  <li key={l.id}>{describe(l, names)} <span className="muted">by {l.reviewer}</span></li>
                ))}
              </ul>
            )}
          </article>
        )}
        {writing && (
          <form onSubmit={(e) => { e.preventDefault(); void submitText(); }} className="small">
            <input
              autoFocus
              value={text}
              onChange={(e) => setText(e.target.value)}
              onKeyDown={(e) => { if (e.key === "Escape") { setWriting(undefined); focus.current?.focus(); } }}
              placeholder={writing === "tag" ? "Tag, then Enter" : "Note, then Enter"}
              maxLength={writing === "tag" ? 100 : 2000}
              aria-label={writing}
              data-testid="review-text"
            />
          </form>
        )}
        <p className="muted small" data-testid="review-keys">
          {KEYS.filter((k) => !k.topicOnly || topicId !== undefined).map((k) => (
            <span key={k.key} className="review-key">
              <kbd>{k.key}</kbd> {k.says}{" "}
            </span>
          ))}
        </p>
        {given.length > 0 && (
          <p className="muted small" data-testid="review-given">
            Last: {describe(given[0], names)} on {given[0].post_id} ({given.length} given)
          </p>
        )}
      </div>
    </Panel>
  );
}
