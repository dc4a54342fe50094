import type { Post } from "../api/schemas";
import { PREVIEW_HOURS, useTopicPreview } from "../hooks/useTopicPreview";
import { previewSummary, queryErrorMark, topicErrorText } from "../lib/topics";

/** Sample posts shown of each kind. */
const SAMPLES = 3;

/**
 * A refused query's message, and the query with the character where it went wrong marked,
 * since the server's "at character 14" is hard to count by eye in a long query.
 */
export function QueryError({ query, error, testid = "topic-error" }: { query: string; error: unknown; testid?: string }) {
  const mark = queryErrorMark(query, error);
  return (
    <div className="error small" role="alert" data-testid={testid} data-code={(error as { code?: string })?.code}>
      <p className="topic-error-text">{topicErrorText(error)}</p>
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
 * A topic query being written, with what it would match among the last day's posts, asked
 * as typing pauses. `testid` names the input (the preview is `topic-preview` beside it).
 */
export function QueryInput(props: { value: string; onChange: (query: string) => void; testid: string; label: string }) {
  const state = useTopicPreview(props.value);
  const { preview, error } = state;
  // An answer about an earlier text stays, dimmed, until the current one comes.
  const stale = state.pending || state.query !== props.value;
  return (
    <div className="topic-query">
      <textarea
        aria-label={props.label}
        data-testid={props.testid}
        rows={2}
        maxLength={4096}
        spellCheck={false}
        placeholder={'e.g. "pulse cloud" OR #PulseCloud NOT pricing'}
        value={props.value}
        onChange={(e) => props.onChange(e.target.value)}
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
            <QueryError query={state.query} error={error} testid="topic-query-error" />
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
