import { memo } from "react";
import type { Stats } from "../api/schemas";
import { compact, percent } from "../lib/format";
import { Empty, Panel } from "./Panel";

const order = ["anger", "sadness", "joy", "optimism"] as const;

export const EmotionsPanel = memo(function EmotionsPanel({ stats }: { stats: Stats | undefined }) {
  const total = stats ? order.reduce((s, k) => s + stats.emotions[k], 0) : 0;
  return (
    <Panel id="emotions" title="Emotions">
      {!stats ? (
        <Empty>Loading…</Empty>
      ) : total === 0 ? (
        <Empty>No post in this window carries an emotion cue.</Empty>
      ) : (
        <ul className="bars">
          {order.map((k) => {
            const n = stats.emotions[k];
            return (
              <li key={k} data-testid={`emotion-${k}`} data-value={n}>
                <span className="bar-label">{k}</span>
                <span className="bar-track" aria-hidden="true">
                  <span className={`bar-fill emo-${k}`} style={{ width: `${(n / total) * 100}%` }} />
                </span>
                <span className="bar-num">
                  {compact(n)} <span className="muted">· {percent(n / total)}</span>
                </span>
              </li>
            );
          })}
        </ul>
      )}
      {stats && total > 0 && (
        <p className="muted small">Share of the {compact(total)} posts with a dominant emotion.</p>
      )}
    </Panel>
  );
});
