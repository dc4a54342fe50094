import { memo } from "react";
import type { Stats } from "../api/schemas";
import { compact, mood, percent, signed } from "../lib/format";
import { Empty, Panel, SentimentBar } from "./Panel";

/** A half-circle gauge of the mean sentiment, -1 on the left to +1 on the right. */
function Gauge({ mean }: { mean: number }) {
  const clamped = Math.max(-1, Math.min(1, mean));
  const angle = Math.PI * (1 - (clamped + 1) / 2);
  const x = 100 + 80 * Math.cos(angle);
  const y = 100 - 80 * Math.sin(angle);
  return (
    <svg viewBox="0 0 200 115" className="gauge" aria-hidden="true">
      <defs>
        <linearGradient id="g-sent" x1="0" x2="1">
          <stop offset="0" stopColor="var(--neg)" />
          <stop offset="0.5" stopColor="var(--neu)" />
          <stop offset="1" stopColor="var(--pos)" />
        </linearGradient>
      </defs>
      <path d="M20 100 A80 80 0 0 1 180 100" fill="none" stroke="url(#g-sent)" strokeWidth="14" strokeLinecap="round" />
      <line x1="100" y1="100" x2={x} y2={y} stroke="var(--fg)" strokeWidth="4" strokeLinecap="round" />
      <circle cx="100" cy="100" r="6" fill="var(--fg)" />
    </svg>
  );
}

export const OverallPanel = memo(function OverallPanel({ stats, source }: { stats: Stats | undefined; source: string }) {
  return (
    <Panel id="overall" title="Overall sentiment" aside={<span className="muted small">{source}</span>}>
      {!stats ? (
        <Empty>Loading…</Empty>
      ) : (
        <div className="overall">
          <div className="gauge-wrap">
            <Gauge mean={stats.sentiment.mean} />
            <div className="gauge-value">
              <strong data-testid="sentiment-mean" data-value={stats.sentiment.mean}>
                {signed(stats.sentiment.mean)}
              </strong>
              <span className={`mood ${mood(stats.sentiment.mean)}`}>{mood(stats.sentiment.mean)}</span>
            </div>
          </div>
          <SentimentBar {...stats.sentiment} label="Sentiment split" />
          <dl className="shares">
            <div className="neg">
              <dt>Negative</dt>
              <dd data-testid="negative-share" data-value={stats.sentiment.negative_share}>{percent(stats.sentiment.negative_share)}</dd>
            </div>
            <div className="neu">
              <dt>Neutral</dt>
              <dd data-testid="neutral-share" data-value={stats.sentiment.neutral_share}>{percent(stats.sentiment.neutral_share)}</dd>
            </div>
            <div className="pos">
              <dt>Positive</dt>
              <dd data-testid="positive-share" data-value={stats.sentiment.positive_share}>{percent(stats.sentiment.positive_share)}</dd>
            </div>
          </dl>
          <dl className="kpis">
            <div><dt>Posts</dt><dd data-testid="posts" data-value={stats.posts}>{compact(stats.posts)}</dd></div>
            <div><dt>High churn risk</dt><dd data-testid="churn-share" data-value={stats.churn.high_share}>{percent(stats.churn.high_share)}</dd></div>
            <div><dt>Toxicity (mean)</dt><dd data-testid="toxicity" data-value={stats.toxicity_mean}>{percent(stats.toxicity_mean)}</dd></div>
            <div><dt>Shares</dt><dd data-testid="shares" data-value={stats.engagement.shares}>{compact(stats.engagement.shares)}</dd></div>
          </dl>
        </div>
      )}
    </Panel>
  );
});
