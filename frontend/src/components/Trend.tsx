import { memo, useMemo } from "react";
import { Bar, CartesianGrid, ComposedChart, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { TimeseriesResponse } from "../api/schemas";
import { clock, compact, percent, signed } from "../lib/format";
import { Empty, Panel } from "./Panel";

interface Point {
  at: string;
  posts: number;
  mean: number;
  negative: number;
}

/** Points of the last hour, one per minute, with empty minutes as zero-volume gaps. */
export function trendPoints(series: TimeseriesResponse | undefined, now = Date.now()): Point[] {
  if (!series) return [];
  const byMinute = new Map(series.points.map((p) => [Math.floor(Date.parse(p.at) / 60_000), p]));
  const last = Math.floor(now / 60_000);
  const out: Point[] = [];
  for (let m = last - 59; m <= last; m++) {
    const p = byMinute.get(m);
    out.push({
      at: new Date(m * 60_000).toISOString(),
      posts: p?.posts ?? 0,
      mean: p?.sentiment.mean ?? NaN,
      negative: p?.sentiment.negative_share ?? NaN,
    });
  }
  return out;
}

const Chart = memo(function Chart({ points, onRender }: { points: Point[]; onRender?: () => void }) {
  onRender?.();
  return (
    <ResponsiveContainer width="100%" height={220}>
      <ComposedChart data={points} margin={{ top: 8, right: 8, bottom: 0, left: -8 }}>
        <CartesianGrid stroke="var(--grid)" vertical={false} />
        <XAxis dataKey="at" tickFormatter={clock} minTickGap={40} stroke="var(--muted)" fontSize={12} />
        <YAxis yAxisId="s" domain={[-1, 1]} tickFormatter={(v: number) => signed(v, 1)} stroke="var(--muted)" fontSize={12} />
        <YAxis yAxisId="v" orientation="right" tickFormatter={compact} stroke="var(--muted)" fontSize={12} />
        <Tooltip
          labelFormatter={(l) => clock(String(l))}
          formatter={(v, name) =>
            name === "Posts" ? compact(Number(v)) : name === "Negative share" ? percent(Number(v)) : signed(Number(v))
          }
          contentStyle={{ background: "var(--card)", border: "1px solid var(--border)", color: "var(--fg)" }}
        />
        <Bar yAxisId="v" dataKey="posts" name="Posts" fill="var(--vol)" isAnimationActive={false} />
        <Line yAxisId="s" dataKey="mean" name="Mean sentiment" stroke="var(--accent)" strokeWidth={2} dot={false} isAnimationActive={false} connectNulls={false} />
        <Line yAxisId="s" dataKey="negative" name="Negative share" stroke="var(--neg)" strokeWidth={1.5} strokeDasharray="4 3" dot={false} isAnimationActive={false} />
      </ComposedChart>
    </ResponsiveContainer>
  );
});

/** The trend; the chart re-renders only when the series changed (once a second at most). */
export const TrendPanel = memo(function TrendPanel(props: { series: TimeseriesResponse | undefined; scope: string; onRender?: () => void }) {
  const points = useMemo(() => trendPoints(props.series), [props.series]);
  const current = props.series?.points.at(-1);
  return (
    <Panel
      id="trend"
      title="Sentiment trend — last hour"
      className="wide"
      aside={<span className="muted small">{props.scope}</span>}
    >
      {!props.series ? (
        <Empty>Loading…</Empty>
      ) : (
        <>
          <p className="sr-only" data-testid="trend-summary">
            {current ? `This minute: ${compact(current.posts)} posts, mean ${signed(current.sentiment.mean)}` : "No posts in the last hour"}
          </p>
          <div data-testid="trend-chart" data-points={props.series.points.length} data-last-posts={current?.posts ?? 0}>
            <Chart points={points} onRender={props.onRender} />
          </div>
          <p className="legend small">
            <span className="key accent" /> mean sentiment <span className="key neg dashed" /> negative share{" "}
            <span className="key vol" /> posts per minute
          </p>
        </>
      )}
    </Panel>
  );
});
