import { memo, useState, type FormEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { api } from "../api/client";
import type { Topic, TopicMetrics, TopicStats, Window } from "../api/schemas";
import { compact, percent } from "../lib/format";
import { Empty, Panel, SentimentBar } from "./Panel";
import { QueryError, QueryInput } from "./TopicQuery";

/** A topic as the panel lists it: its record, and its figures once the share of voice came. */
interface Row {
  id: number;
  name: string;
  topic?: Topic;
  stats?: TopicStats;
}

/**
 * The share of voice's order (most posts first), with the topics it does not know yet (just
 * created) after it; topics the list no longer holds (just deleted) are left out.
 */
function rows(metrics: TopicMetrics | undefined, topics: Topic[] | undefined): Row[] {
  const byId = new Map((topics ?? []).map((t) => [t.id, t]));
  const out: Row[] = [];
  for (const s of metrics?.items ?? []) {
    if (topics && !byId.has(s.id)) continue;
    out.push({ id: s.id, name: byId.get(s.id)?.name ?? s.name, topic: byId.get(s.id), stats: s });
  }
  const listed = new Set(out.map((r) => r.id));
  for (const t of topics ?? []) if (!listed.has(t.id)) out.push({ id: t.id, name: t.name, topic: t });
  return out;
}

/**
 * Writes a topic and refreshes what shows topics (the panel, the topic selector); resolves to
 * the error when refused, undefined when written.
 */
export function useTopicWrite() {
  const queryClient = useQueryClient();
  return async (write: () => Promise<unknown>): Promise<unknown> => {
    try {
      await write();
      return undefined;
    } catch (e) {
      return e;
    } finally {
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: ["topics"] }),
        queryClient.invalidateQueries({ queryKey: ["topic-metrics"] }),
      ]);
    }
  };
}

/** A topic's row: its share of voice (choosing it filters on it) and, for writers, its actions. */
const TopicRow = memo(function TopicRow(props: { row: Row; active: boolean; canEdit: boolean; onPick: (id: string | undefined) => void }) {
  const { row, active } = props;
  const write = useTopicWrite();
  const [editing, setEditing] = useState<string | undefined>();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ query: string; error: unknown }>();
  const s = row.stats;
  const paused = row.topic?.status === "paused";

  const run = async (what: () => Promise<unknown>, query = "") => {
    setBusy(true);
    const e = await write(what);
    setBusy(false);
    setError(e === undefined ? undefined : { query, error: e });
    return e === undefined;
  };
  const saveQuery = async () => {
    if (editing === undefined || editing === row.topic?.query) return setEditing(undefined);
    const query = editing;
    if (await run(() => api.updateTopic(row.id, { query }), query)) setEditing(undefined);
  };
  const remove = async () => {
    if (await run(() => api.deleteTopic(row.id))) {
      setConfirming(false);
      // A filter on a deleted topic would show nothing.
      if (active) props.onPick(undefined);
    }
  };

  return (
    <li
      className={`topic-row ${paused ? "paused" : ""}`}
      data-testid="topic-row"
      data-id={row.id}
      data-name={row.name}
      data-posts={s?.posts}
      data-status={row.topic?.status}
    >
      <button
        type="button"
        className={`row ${active ? "active" : ""}`}
        aria-pressed={active}
        title={active ? "Clear the topic filter" : `Show only topic ${row.name}`}
        onClick={() => props.onPick(active ? undefined : String(row.id))}
      >
        <span className="row-key" title={row.topic?.query}>{row.name}</span>
        <span className="row-vol" aria-hidden="true">
          <span style={{ width: `${(s?.share_of_voice.volume ?? 0) * 100}%` }} />
        </span>
        <span className="row-num" data-testid="row-posts">{s ? compact(s.posts) : "–"}</span>
        <span className="row-extra" data-testid="row-sov">{s ? `${percent(s.share_of_voice.volume)} SoV` : ""}</span>
        <span className="row-sub small muted" data-testid="topic-sov-split">
          {paused && <span className="topic-paused">paused · </span>}
          {!s
            ? "counting…"
            : s.posts === 0
              ? "no posts in this window"
              : `${percent(s.share_of_voice.positive)} of positive · ${percent(s.share_of_voice.negative)} of negative`}
        </span>
        {s && <SentimentBar {...s.sentiment} label={row.name} />}
      </button>
      {props.canEdit && row.topic && (
        <div className="topic-actions small">
          <button
            type="button"
            className="btn small"
            data-testid="topic-toggle"
            disabled={busy}
            onClick={() => void run(() => api.updateTopic(row.id, { status: paused ? "active" : "paused" }))}
          >
            {paused ? "Resume" : "Pause"}
          </button>
          <button
            type="button"
            className="btn small"
            data-testid="topic-edit"
            disabled={busy}
            aria-expanded={editing !== undefined}
            onClick={() => setEditing(editing === undefined ? row.topic!.query : undefined)}
          >
            Edit query
          </button>
          {confirming ? (
            <span className="topic-confirm">
              Delete “{row.name}”? Its posts keep their figures.
              <button type="button" className="btn small danger" data-testid="topic-delete-confirm" disabled={busy} onClick={() => void remove()}>
                Delete
              </button>
              <button type="button" className="btn small" onClick={() => setConfirming(false)}>
                Keep
              </button>
            </span>
          ) : (
            <button type="button" className="btn small" data-testid="topic-delete" disabled={busy} onClick={() => setConfirming(true)}>
              Delete
            </button>
          )}
        </div>
      )}
      {editing !== undefined && (
        <form
          className="topic-form"
          aria-label={`Edit the query of ${row.name}`}
          onSubmit={(e) => {
            e.preventDefault();
            void saveQuery();
          }}
        >
          <QueryInput value={editing} onChange={setEditing} testid="topic-edit-query" label={`Query of ${row.name}`} />
          <div className="topic-buttons">
            <button type="submit" className="btn small" data-testid="topic-edit-save" disabled={busy || !editing.trim()}>
              Save as version {(row.topic?.version ?? 0) + 1}
            </button>
            <button type="button" className="btn small" onClick={() => setEditing(undefined)}>
              Cancel
            </button>
          </div>
          <p className="muted small">New posts are matched against the new version; stored posts keep what they matched.</p>
        </form>
      )}
      {error && <QueryError query={error.query} error={error.error} testid="topic-row-error" />}
    </li>
  );
});

/** "New topic": a name and a query, previewed as it is typed. */
function NewTopicForm() {
  const write = useTopicWrite();
  const [name, setName] = useState("");
  const [query, setQuery] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ query: string; error: unknown }>();
  const [saved, setSaved] = useState<string>();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setSaved(undefined);
    const q = query;
    const failed = await write(() => api.createTopic({ name: name.trim(), query: q }));
    setBusy(false);
    if (failed === undefined) {
      setSaved(name.trim());
      setName("");
      setQuery("");
      setError(undefined);
    } else {
      setError({ query: q, error: failed });
    }
  };

  return (
    <form className="topic-form" data-testid="topic-new" aria-label="New topic" onSubmit={(e) => void submit(e)}>
      <h3 className="sub">New topic</h3>
      <input
        aria-label="Topic name"
        data-testid="topic-name"
        maxLength={200}
        placeholder="name"
        value={name}
        onChange={(e) => setName(e.target.value)}
      />
      <QueryInput value={query} onChange={setQuery} testid="topic-query" label="Topic query" />
      <div className="topic-buttons">
        <button type="submit" className="btn" data-testid="topic-save" disabled={busy || !name.trim() || !query.trim()}>
          {busy ? "Saving…" : "Save"}
        </button>
        {saved && (
          <span className="muted small" role="status" data-testid="topic-saved">
            Saved “{saved}”: new posts are matched against it within a second or two.
          </span>
        )}
      </div>
      {error && <QueryError query={error.query} error={error.error} />}
    </form>
  );
}

/**
 * Topics: the share of voice between them over the window (with every filter but the topic,
 * so they compare on the same posts), a row per topic that filters on it, and for callers who
 * may write them (editors, admins, an open server) a new topic form and each topic's actions.
 */
export function TopicsPanel(props: {
  metrics: TopicMetrics | undefined;
  topics: Topic[] | undefined;
  error: string | undefined;
  active: string | undefined;
  /** The window, or `the period` when a fixed period is shown. */
  window: Window | "the period";
  canEdit: boolean;
  onPick: (id: string | undefined) => void;
}) {
  const list = rows(props.metrics, props.topics);
  const loading = !props.metrics && !props.topics;
  return (
    <Panel
      id="topics"
      title="Topics"
      className={props.canEdit ? "tall" : undefined}
      aside={<span className="muted small">share of voice · {props.window}</span>}
    >
      {props.error && loading ? (
        <Empty>Could not load the topics: {props.error}</Empty>
      ) : loading ? (
        <Empty>Loading…</Empty>
      ) : list.length === 0 ? (
        <Empty>{props.canEdit ? "No topics yet: create one below." : "No topics yet: editors and admins create them."}</Empty>
      ) : (
        <ol className="ranked topics">
          {list.map((row) => (
            <TopicRow key={row.id} row={row} active={props.active === String(row.id)} canEdit={props.canEdit} onPick={props.onPick} />
          ))}
        </ol>
      )}
      {props.canEdit && <NewTopicForm />}
    </Panel>
  );
}
