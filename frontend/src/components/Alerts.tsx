import { memo } from "react";
import type { Alert } from "../api/schemas";
import { ago, percent, signed } from "../lib/format";
import { Empty, Panel } from "./Panel";

/** The words and posts that drove an alert, as its evidence recorded them. */
function evidenceOf(alert: Alert): { terms: string[]; posts: { id: string; text: string }[] } {
  const e = alert.evidence;
  const terms = Array.isArray(e.top_terms)
    ? e.top_terms.flatMap((t) => (t && typeof t === "object" && typeof (t as { term?: unknown }).term === "string" ? [(t as { term: string }).term] : []))
    : [];
  const posts = Array.isArray(e.top_posts)
    ? e.top_posts.flatMap((p) => {
        const { id, text } = (p ?? {}) as { id?: unknown; text?: unknown };
        return typeof id === "string" && typeof text === "string" ? [{ id, text }] : [];
      })
    : [];
  return { terms: terms.slice(0, 5), posts: posts.slice(0, 2) };
}

function Evidence({ alert }: { alert: Alert }) {
  const { terms, posts } = evidenceOf(alert);
  if (terms.length === 0 && posts.length === 0) return null;
  return (
    <div className="alert-evidence small" data-testid="alert-evidence">
      {terms.length > 0 && (
        <div>
          <span className="muted">Words: </span>
          {terms.map((t) => (
            <span key={t} className="tag">{t}</span>
          ))}
        </div>
      )}
      {posts.map((p) => (
        <blockquote key={p.id} className="evidence-post" title={p.id}>
          {p.text}
        </blockquote>
      ))}
    </div>
  );
}

function figure(alert: Alert, v: number): string {
  if (alert.kind === "volume_spike") return String(Math.round(v));
  if (alert.kind === "sentiment_dip") return signed(v);
  return percent(v);
}

export const AlertsPanel = memo(function AlertsPanel(props: {
  alerts: Alert[];
  onAck: (id: number) => void;
  pending: Set<number>;
  error?: string;
}) {
  const open = props.alerts.filter((a) => a.status === "firing").length;
  return (
    <Panel id="alerts" title="Alerts" aside={<span className="muted small" data-testid="alerts-firing">{open} firing</span>}>
      {props.error && <p className="error small" role="alert">{props.error}</p>}
      {props.alerts.length === 0 ? (
        <Empty>No alerts for these filters. Rules are managed at /api/v1/alert-rules.</Empty>
      ) : (
        <ul className="alerts">
          {props.alerts.map((a) => (
            <li key={a.id} className={`alert sev-${a.severity} st-${a.status}`} data-testid="alert" data-kind={a.kind} data-status={a.status}>
              <div className="alert-head">
                <span className={`badge sev-${a.severity}`}>{a.severity}</span>
                <strong>{a.rule_name}</strong>
                <span className="muted small">
                  {a.dimension === "overall" ? "whole stream" : `${a.dimension} ${a.key}`} · {ago(a.fired_at)}
                </span>
              </div>
              <div className="alert-body small">
                {a.kind}: {figure(a, a.value)} (threshold {figure(a, a.threshold)}) · <span className="status">{a.status}</span>
                {a.status === "firing" && (
                  <button
                    type="button"
                    className="btn small"
                    disabled={props.pending.has(a.id)}
                    onClick={() => props.onAck(a.id)}
                    aria-label={`Acknowledge alert ${a.rule_name}`}
                  >
                    Acknowledge
                  </button>
                )}
              </div>
              <Evidence alert={a} />
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
});
