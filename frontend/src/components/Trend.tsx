import { memo, useMemo } from "react";
import type { TimeseriesResponse } from "../api/schemas";
import { compact, signed } from "../lib/format";
import { CHART_HEIGHT, TrendChart, type TrendPoint } from "./TrendChart";
import { Empty, Panel } from "./Panel";

type Point = TrendPoint;

/** Bucket widths the time series takes, in minutes. */
const bucketMinutes = { "1m": 1, "5m": 5, "1h": 60 } as const;

/**
 * One point per bucket, empty buckets as zero-volume gaps: the last hour by minute, or with a
 * fixed `period` (RFC 3339 ends), the period in the series' buckets.
 */
export function trendPoints(series: TimeseriesResponse | undefined, now = Date.now(), period?: { since: string; until: string }): Point[] {
  if (!series) return [];
  const step = bucketMinutes[series.bucket] * 60_000;
  const byBucket = new Map(series.points.map((p) => [Math.floor(Date.parse(p.at) / step), p]));
  const [first, last] = period
    ? [Math.floor(Date.parse(period.since) / step), Math.ceil(Date.parse(period.until) / step) - 1]
    : [Math.floor(now / step) - 59, Math.floor(now / step)];
  const out: Point[] = [];
  for (let b = first; b <= last && out.length < 1500; b++) {
    const p = byBucket.get(b);
    out.push({
      at: new Date(b * step).toISOString(),
      posts: p?.posts ?? 0,
      mean: p?.sentiment.mean ?? NaN,
      negative: p?.sentiment.negative_share ?? NaN,
    });
  }
  return out;
}

/** The trend; the chart re-renders only when the series changed (once a second at most). */
export const TrendPanel = memo(function TrendPanel(props: {
  series: TimeseriesResponse | undefined;
  scope: string;
  period?: { since: string; until: string };
  onRender?: () => void;
}) {
  const { period } = props;
  const points = useMemo(() => trendPoints(props.series, Date.now(), period), [props.series, period?.since, period?.until]);
  const per = props.series ? { "1m": "minute", "5m": "5 minutes", "1h": "hour" }[props.series.bucket] : "minute";
  const current = props.series?.points.at(-1);
  return (
    <Panel
      id="trend"
      title={period ? "Sentiment trend — the period" : "Sentiment trend — last hour"}
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
            {current
              ? `${period ? "Last bucket" : "This minute"}: ${compact(current.posts)} posts, mean ${signed(current.sentiment.mean)}`
              : period
                ? "No posts in the period"
                : "No posts in the last hour"}
          </p>
          <div data-testid="trend-chart" data-points={props.series.points.length} data-last-posts={current?.posts ?? 0}>
            <TrendChart points={points} onRender={props.onRender} />
          </div>
        </>
      )}
      <p className="legend small">
        <span className="key accent" /> mean sentiment <span className="key neg dashed" /> negative share{" "}
        <span className="key vol" /> posts per {per}
      </p>
    </Panel>
  );
});
