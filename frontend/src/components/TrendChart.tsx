import { memo, useLayoutEffect, useRef, useState } from "react";
import { clock, compact, percent, signed } from "../lib/format";

export interface TrendPoint {
  at: string;
  posts: number;
  mean: number;
  negative: number;
}

export const CHART_HEIGHT = 260;
const HEIGHT = CHART_HEIGHT;
const M = { top: 8, right: 40, bottom: 22, left: 36 };
const SENTIMENT_TICKS = [-1, -0.5, 0, 0.5, 1];

/** A round upper bound for the volume axis: 37 → 40, 1234 → 1500. */
export function niceMax(n: number): number {
  if (!(n > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(n));
  const step = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((s) => s * mag >= n) ?? 10;
  return step * mag;
}

/** An SVG path through the finite values, broken where a value is missing. */
export function linePath(values: number[], x: (i: number) => number, y: (v: number) => number): string {
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) {
      pen = false;
      return;
    }
    d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  return d;
}

/** The container's width, followed as it resizes; the height is fixed so nothing below moves. */
export function useWidth(): [React.RefObject<HTMLDivElement | null>, number] {
  const ref = useRef<HTMLDivElement | null>(null);
  const [width, setWidth] = useState(0);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver((entries) => setWidth(Math.round(entries[0].contentRect.width)));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, width];
}

/**
 * Posts per minute as bars (right axis) under the mean sentiment and the negative share as lines
 * (left axis, -1..1), drawn as plain SVG: a charting library would be most of the page's script.
 */
export const TrendChart = memo(function TrendChart({ points, onRender }: { points: TrendPoint[]; onRender?: () => void }) {
  onRender?.();
  const [ref, width] = useWidth();
  const [hover, setHover] = useState<number>();
  const n = points.length;
  const w = Math.max(0, width - M.left - M.right);
  const h = HEIGHT - M.top - M.bottom;
  const vmax = niceMax(Math.max(0, ...points.map((p) => p.posts)));
  const band = n > 0 ? w / n : 0;
  const x = (i: number) => M.left + band * (i + 0.5);
  const yS = (v: number) => M.top + ((1 - v) / 2) * h;
  const yV = (v: number) => M.top + h - (v / vmax) * h;
  const every = Math.max(1, Math.ceil(n / Math.max(1, w / 6)) * 5);
  const tip = hover !== undefined ? points[hover] : undefined;

  const onMove = (e: React.PointerEvent<SVGSVGElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const i = Math.floor((e.clientX - r.left - M.left) / (band || 1));
    setHover(i >= 0 && i < n ? i : undefined);
  };

  return (
    <div ref={ref} className="chart" style={{ height: HEIGHT }}>
      {width > 0 && (
        <svg width={width} height={HEIGHT} role="img" aria-label="Posts per bucket, mean sentiment and negative share over time" onPointerMove={onMove} onPointerLeave={() => setHover(undefined)}>
          <g className="chart-grid">
            {SENTIMENT_TICKS.map((t) => (
              <line key={t} x1={M.left} x2={M.left + w} y1={yS(t)} y2={yS(t)} />
            ))}
          </g>
          <g className="chart-bars">
            {points.map((p, i) =>
              p.posts > 0 ? <rect key={p.at} x={x(i) - band * 0.4} width={band * 0.8} y={yV(p.posts)} height={M.top + h - yV(p.posts)} /> : null,
            )}
          </g>
          <path className="chart-line mean" d={linePath(points.map((p) => p.mean), x, yS)} />
          <path className="chart-line negative" d={linePath(points.map((p) => p.negative), x, yS)} />
          <g className="chart-axis">
            {SENTIMENT_TICKS.map((t) => (
              <text key={t} x={M.left - 6} y={yS(t)} textAnchor="end" dominantBaseline="middle">{signed(t, 1)}</text>
            ))}
            {[0, vmax / 2, vmax].map((t) => (
              <text key={t} x={M.left + w + 6} y={yV(t)} dominantBaseline="middle">{compact(t)}</text>
            ))}
            {points.map((p, i) =>
              (n - 1 - i) % every === 0 ? (
                <text key={p.at} x={x(i)} y={HEIGHT - 6} textAnchor="middle">{clock(p.at)}</text>
              ) : null,
            )}
          </g>
          {tip && hover !== undefined && <line className="chart-cursor" x1={x(hover)} x2={x(hover)} y1={M.top} y2={M.top + h} />}
        </svg>
      )}
      {tip && hover !== undefined && (
        <div className="chart-tip small" style={{ left: Math.min(x(hover) + 8, Math.max(0, width - 150)) }} data-testid="trend-tip">
          <strong>{clock(tip.at)}</strong>
          <br />Posts: {compact(tip.posts)}
          <br />Mean sentiment: {signed(tip.mean)}
          <br />Negative share: {percent(tip.negative)}
        </div>
      )}
    </div>
  );
});
