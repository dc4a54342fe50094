import { memo } from "react";
import type { TermsResponse } from "../api/schemas";
import type { ViralItem } from "../state/live";
import { compact, signed } from "../lib/format";
import { Empty, Panel } from "./Panel";

export const ViralPanel = memo(function ViralPanel(props: { viral: ViralItem[]; terms: TermsResponse | undefined }) {
  return (
    <Panel id="viral" title="Trending & viral">
      <h3 className="sub">Viral posts</h3>
      {props.viral.length === 0 ? (
        <Empty>
          No virality scores yet: this Pulse publishes none. Posts appear here with their score and interval as
          <code> virality:update</code> messages arrive.
        </Empty>
      ) : (
        <ol className="viral">
          {props.viral.map((v) => (
            <li key={v.id} data-testid="viral">
              <strong>{v.score === null ? "–" : v.score.toFixed(2)}</strong>
              {v.low !== null && v.high !== null && (
                <span className="muted small"> [{v.low.toFixed(2)}, {v.high.toFixed(2)}]</span>
              )}{" "}
              <span className="small">{v.text ?? v.id}</span>
              {v.platform && <span className="tag small">{v.platform}</span>}
            </li>
          ))}
        </ol>
      )}
      <h3 className="sub">Trending terms <span className="muted small">(whole stream, {props.terms?.window ?? "…"})</span></h3>
      {!props.terms ? (
        <Empty>Loading…</Empty>
      ) : props.terms.terms.length === 0 ? (
        <Empty>No terms counted yet.</Empty>
      ) : (
        <ul className="terms">
          {props.terms.terms.map((t) => (
            <li key={t.term} data-testid="term" className={t.sentiment_mean <= -0.08 ? "neg" : t.sentiment_mean >= 0.4 ? "pos" : "neu"}>
              {t.term} <span className="muted small">{compact(t.posts)} · {signed(t.sentiment_mean)}</span>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
});
