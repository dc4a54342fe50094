import { useId } from "react";
import type { Post } from "../api/schemas";
import { PREVIEW_HOURS, useTopicPreview } from "../hooks/useTopicPreview";
import { previewSummary, queryErrorMark, topicErrorText } from "../lib/topics";

/** Sample posts shown of each kind. */
const SAMPLES = 3;

/**
 * A refused query's message, and the query with the character where it went wrong marked,
 * since the server's "at character 14" is hard to count by eye in a long query. `text`: the
 * message in words, when not a topic call's; `id`: for the query box's `aria-describedby`.
 */
export function QueryError(props: { query: string; error: unknown; testid?: string; text?: string; id?: string }) {
  const { query, error, testid = "topic-error" } = props;
  const mark = queryErrorMark(query, error);
  return (
    <div className="error small" role="alert" id={props.id} data-testid={testid} data-code={(error as { code?: string })?.code}>
      <p className="topic-error-text">{props.text ?? topicErrorText(error)}</p>
      {mark && (
        <p className="topic-mark" data-testid="topic-error-mark" data-position={mark.position}>
          <code>
            {mark.before}
            <mark title={`character ${mark.position}`}>{mark.at || "\u00a0"}</mark>
            {mark.after}
          </code>
          <span className="muted">
            {" "}at character {mark.position}
            {mark.expected ? `: expected ${mark.expected}` : ""}
          </span>
        </p>
      )}
    </div>
  );
}

function Samples({ posts, label }: { posts: Post[]; label: string }) {
  if (posts.length === 0) return null;
  return (
    <ul className="topic-samples" aria-label={label}>
      {posts.slice(0, SAMPLES).map((p) => (
        <li key={p.id} data-testid="topic-sample" data-id={p.id}>
          {p.text}
        </li>
      ))}
    </ul>
  );
}

/**
 * A box to write a query of the topics language in: monospaced, not spell-checked, within the
 * language's 4,096 characters. `multiline`: a text area (a topic's query); else one line, where
 * Enter submits its form (a search). While the server refuses what it holds, it is marked
 * invalid and described by the refusal (`errorId`, a `QueryError`'s `id`).
 */
export function QueryField(props: {
  value: string;
  onChange: (query: string) => void;
  testid: string;
  label: string;
  multiline?: boolean;
  errorId?: string;
  placeholder?: string;
}) {
  const common = {
    "aria-label": props.label,
    "aria-invalid": props.errorId ? true : undefined,
    "aria-describedby": props.errorId,
    "data-testid": props.testid,
    maxLength: 4096,
    spellCheck: false,
    autoCapitalize: "off",
    autoCorrect: "off",
    placeholder: props.placeholder ?? 'e.g. "pulse cloud" OR #PulseCloud NOT pricing',
    value: props.value,
  };
  return props.multiline ? (
    <textarea {...common} rows={2} onChange={(e) => props.onChange(e.target.value)} />
  ) : (
    <input {...common} type="search" enterKeyHint="search" autoComplete="off" onChange={(e) => props.onChange(e.target.value)} />
  );
}

/**
 * A topic query being written, with what it would match among the last day's posts, asked
 * as typing pauses. `testid` names the input (the preview is `topic-preview` beside it).
 */
export function QueryInput(props: { value: string; onChange: (query: string) => void; testid: string; label: string }) {
  const state = useTopicPreview(props.value);
  const { preview, error } = state;
  // An answer about an earlier text stays, dimmed, until the current one comes.
  const stale = state.pending || state.query !== props.value;
  const errorId = useId();
  // Only the parser's refusal says the query is wrong (not a busy server, say).
  const refused = (error as { code?: string } | undefined)?.code === "invalid_topic_query" && !stale;
  return (
    <div className="topic-query">
      <QueryField
        multiline
        value={props.value}
        onChange={props.onChange}
        testid={props.testid}
        label={props.label}
        errorId={refused ? errorId : undefined}
      />
      {props.value.trim() !== "" && (
        <div
          className={`topic-preview small ${stale ? "stale" : ""}`}
          data-testid="topic-preview"
          data-query={state.query}
          data-pending={stale}
          data-matches={preview && !error ? preview.matches.count : undefined}
          data-near-misses={preview && !error ? preview.near_misses.count : undefined}
          aria-live="polite"
        >
          {error !== undefined ? (
            <QueryError query={state.query} error={error} testid="topic-query-error" id={errorId} />
          ) : preview ? (
            <>
              <p className="topic-preview-line">{previewSummary(preview, PREVIEW_HOURS)}</p>
              <Samples posts={preview.matches.samples} label="Posts it matches" />
              {preview.near_misses.samples.length > 0 && <p className="muted">Near misses (its NOTs and fields cut these):</p>}
              <Samples posts={preview.near_misses.samples} label="Near misses" />
            </>
          ) : (
            <p className="muted">Previewing…</p>
          )}
        </div>
      )}
    </div>
  );
}
