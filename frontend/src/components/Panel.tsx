import type { ReactNode } from "react";

/**
 * A titled dashboard card; `id` is the panel's landmark and test hook. Cards have fixed heights
 * (the grid's rows) and scroll inside, so data arriving in one never moves another.
 */
export function Panel(props: { id: string; title: string; aside?: ReactNode; className?: string; children: ReactNode }) {
  return (
    <section className={`panel ${props.className ?? ""}`} aria-labelledby={`${props.id}-title`} data-panel={props.id}>
      <header className="panel-head">
        <h2 id={`${props.id}-title`}>{props.title}</h2>
        {props.aside}
      </header>
      <div className="panel-body">{props.children}</div>
    </section>
  );
}

/** What a panel shows while it has nothing, saying why. */
export function Empty(props: { children: ReactNode }) {
  return <p className="empty">{props.children}</p>;
}

/** A negative / neutral / positive split as one accessible bar. */
export function SentimentBar(props: { negative: number; neutral: number; positive: number; label?: string }) {
  const { negative, neutral, positive } = props;
  const total = negative + neutral + positive || 1;
  const pct = (n: number) => `${(n / total) * 100}%`;
  return (
    <div
      className="sbar"
      role="img"
      aria-label={`${props.label ? props.label + ": " : ""}${Math.round((negative / total) * 100)}% negative, ${Math.round((neutral / total) * 100)}% neutral, ${Math.round((positive / total) * 100)}% positive`}
    >
      <span className="neg" style={{ width: pct(negative) }} />
      <span className="neu" style={{ width: pct(neutral) }} />
      <span className="pos" style={{ width: pct(positive) }} />
    </div>
  );
}
