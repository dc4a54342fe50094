import { memo } from "react";
import type { PostVirality, TermsResponse } from "../api/schemas";
import { compact, percent, perMinute, score, signed } from "../lib/format";
import { Empty, Panel } from "./Panel";

const dynamicsTitle = {
  deep: "Deep: spreads through chains of reshares",
  broad: "Broad: one big broadcast, shares straight from the post",
  hybrid: "Hybrid: between a broadcast and reshare chains",
} as const;

const ViralRow = memo(function ViralRow({ v, text }: { v: PostVirality; text: string | undefined }) {
  const ci = v.confidence_interval;
  const m = v.momentum;
  return (
    <li
      className="viral-post"
      data-testid="viral"
      data-id={v.post_id}
      data-platform={v.platform ?? ""}
      data-score={v.virality_score}
      data-probability={v.virality_probability}
      data-lower={ci.lower}
      data-upper={ci.upper}
      data-dynamics={v.virality_dynamics}
      data-velocity={m.velocity}
      data-acceleration={m.acceleration}
      data-classification={v.viral_classification}
    >
      <div className="viral-head">
        <strong className="viral-score" data-testid="viral-score" title="Virality score (0–100)">
          {score(v.virality_score)}
        </strong>
        <span className="small" data-testid="viral-probability" title="Probability of going viral">
          {percent(v.virality_probability)} viral
        </span>
        {v.viral_classification === "yes" && <span className="badge warn small" data-testid="viral-classified">viral</span>}
        <span className={`badge dyn dyn-${v.virality_dynamics} small`} data-testid="viral-dynamics" title={dynamicsTitle[v.virality_dynamics]}>
          {v.virality_dynamics}
        </span>
      </div>
      <div className="small">
        {/* Isolated: the text is the producer's, and a direction override left open in it
            would run on over the product and hashtags after it ("enohpeslup" shown as
            "pulsephone"), which no label may do. It wraps anywhere, as a post's text does. */}
        <span className="muted">{v.platform ?? "?"}</span> ·{" "}
        <bdi className="viral-text" title={v.post_id}>
          {text ?? v.post_id}
        </bdi>
        {v.product && <span className="tag">{v.product}</span>}
        {v.hashtags.slice(0, 3).map((h) => (
          <span key={h} className="tag">{h}</span>
        ))}
      </div>
      <div className="small muted viral-figures">
        <span data-testid="viral-shares">{compact(v.counts.shares)} {v.counts.shares === 1 ? "share" : "shares"}</span> ·{" "}
        <span title={`${Math.round(ci.level * 100)}% interval on the final share count`}>
          final <span data-testid="viral-interval">{compact(ci.lower)}–{compact(ci.upper)}</span>
        </span>{" "}
        · <span data-testid="viral-velocity" title="Engagements per minute">{perMinute(m.velocity)}</span>{" "}
        <span data-testid="viral-acceleration" title="Change of velocity per minute">({signed(m.acceleration, 1)})</span>
      </div>
    </li>
  );
});

export const ViralPanel = memo(function ViralPanel(props: {
  viral: PostVirality[] | undefined;
  texts: Map<string, string>;
  error?: string;
  terms: TermsResponse | undefined;
}) {
  return (
    <Panel id="viral" title="Trending & viral">
      <h3 className="sub">Viral posts <span className="muted small">(active cascades, by virality score)</span></h3>
      {!props.viral ? (
        <Empty>{props.error ? `Could not load trending posts: ${props.error}` : "Loading…"}</Empty>
      ) : props.viral.length === 0 ? (
        <Empty>
          No post has engagement being tracked for these filters yet. Posts appear here, with their virality score,
          probability and predicted final shares, as their shares arrive.
        </Empty>
      ) : (
        <ol className="viral" aria-label="Posts by virality score">
          {props.viral.map((v) => (
            <ViralRow key={v.post_id} v={v} text={props.texts.get(v.post_id)} />
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
