import { memo, useMemo } from "react";
import type { TimeseriesResponse } from "../api/schemas";
import { compact, signed } from "../lib/format";
import { CHART_HEIGHT, TrendChart, type TrendPoint } from "./TrendChart";
import { Empty, Panel } from "./Panel";

type Point = TrendPoint;

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
      {/* The chart's box is there from the first render, so nothing moves when data arrives. */}
      {!props.series ? (
        <div className="chart" style={{ height: CHART_HEIGHT }}>
          <Empty>Loading…</Empty>
        </div>
      ) : (
        <>
          <p className="sr-only" data-testid="trend-summary">
            {current ? `This minute: ${compact(current.posts)} posts, mean ${signed(current.sentiment.mean)}` : "No posts in the last hour"}
          </p>
          <div data-testid="trend-chart" data-points={props.series.points.length} data-last-posts={current?.posts ?? 0}>
            <TrendChart points={points} onRender={props.onRender} />
          </div>
        </>
      )}
      <p className="legend small">
        <span className="key accent" /> mean sentiment <span className="key neg dashed" /> negative share{" "}
        <span className="key vol" /> posts per minute
      </p>
    </Panel>
  );
});
