import { memo, useMemo } from "react";
import type { FacetCount, SearchFacets as Facets } from "../api/schemas";
import { compact, percent } from "../lib/format";
import { sentiments } from "../lib/search";
import { fillBuckets } from "../lib/searchResults";
import { SentimentBar } from "./Panel";
import { niceMax, useWidth } from "./TrendChart";

/** Keys shown per facet. */
const TOP = 8;

/**
 * The class of a key's bar: the sentiment facet's three keys have their colour, every other key
 * none. Those keys are labels a post's producer chose (a product, a language), and as class
 * names they would give the bar any style of the page: `panel-chooser-list` lifts it out of its
 * track as an opaque box over the rest of the column, where a click picks the key.
 */
export function barClass(facet: string, key: string): string {
  return facet === "sentiment" && (sentiments as readonly string[]).includes(key) ? `bar-fill facet-sentiment-${key}` : "bar-fill";
}

/**
 * One facet's keys by count, as bars of their share of the matches. With `onPick`, a key is a
 * button that narrows the search to it (again: clears it), as the dashboard's ranked rows do.
 */
export function FacetBars(props: {
  facet: string;
  title: string;
  items: FacetCount[];
  total: number;
  active?: string;
  name?: (key: string) => string;
  onPick?: (key: string | undefined) => void;
}) {
  const { items, total } = props;
  if (items.length === 0) return null;
  const max = Math.max(...items.map((i) => i.count), 1);
  return (
    <section className="facet" data-testid={`facet-${props.facet}`} aria-labelledby={`facet-${props.facet}-title`}>
      <h3 className="sub" id={`facet-${props.facet}-title`}>
        {props.title}
        {items.length > TOP && <span className="muted small"> · top {TOP} of {items.length}</span>}
      </h3>
      <ol className="facet-bars">
        {items.slice(0, TOP).map((item) => {
          const label = props.name?.(item.key) ?? item.key;
          const active = props.active === item.key;
          const body = (
            <>
              <span className="facet-key">{label}</span>
              <span className="bar-track" aria-hidden="true">
                <span className={barClass(props.facet, item.key)} style={{ width: `${(item.count / max) * 100}%` }} />
              </span>
              <span className="bar-num">
                {compact(item.count)} <span className="muted">· {percent(item.count / (total || 1))}</span>
              </span>
            </>
          );
          return (
            <li key={item.key} data-testid="facet-row" data-key={item.key} data-count={item.count}>
              {props.onPick ? (
                <button
                  type="button"
                  className={`facet-row ${active ? "active" : ""}`}
                  aria-pressed={active}
                  title={active ? `Clear the ${props.facet} filter` : `Only ${props.facet} ${label}`}
                  onClick={() => props.onPick!(active ? undefined : item.key)}
                >
                  {body}
                </button>
              ) : (
                <div className="facet-row">{body}</div>
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

const VOLUME_HEIGHT = 110;
const VM = { top: 6, right: 8, bottom: 18, left: 32 };

const dayLabel = (iso: string) => new Date(iso).toLocaleDateString("en", { month: "short", day: "numeric" });
const bucketLabel = (iso: string, interval: "hour" | "day") =>
  interval === "day" ? dayLabel(iso) : `${dayLabel(iso)} ${new Date(iso).toLocaleTimeString("en", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" })}`;

/**
 * Matches per hour or day as bars, plain SVG like the trend chart (whose axis scale it uses);
 * the text equivalent is the label, each bar's count its tooltip.
 */
export const VolumeChart = memo(function VolumeChart(props: { buckets: Facets["buckets"]; interval: Facets["interval"] }) {
  const [ref, width] = useWidth();
  const points = useMemo(() => fillBuckets(props.buckets, props.interval), [props.buckets, props.interval]);
  const n = points.length;
  const w = Math.max(0, width - VM.left - VM.right);
  const h = VOLUME_HEIGHT - VM.top - VM.bottom;
  const peak = points.reduce((a, b) => (b.count > a.count ? b : a), points[0] ?? { at: "", count: 0 });
  const vmax = niceMax(peak.count);
  const band = n > 0 ? w / n : 0;
  const y = (v: number) => VM.top + h - (v / vmax) * h;
  const per = props.interval === "day" ? "day" : "hour";
  const summary =
    n === 0
      ? "No matches to chart"
      : `Matches per ${per} from ${bucketLabel(points[0].at, props.interval)} to ${bucketLabel(points[n - 1].at, props.interval)}; the most, ${compact(peak.count)}, ${props.interval === "day" ? "on" : "at"} ${bucketLabel(peak.at, props.interval)}`;
  return (
    <div ref={ref} className="chart volume" style={{ height: VOLUME_HEIGHT }} data-testid="search-volume" data-buckets={n}>
      {width > 0 && n > 0 && (
        <svg width={width} height={VOLUME_HEIGHT} role="img" aria-label={summary}>
          <g className="chart-grid">
            <line x1={VM.left} x2={VM.left + w} y1={y(0)} y2={y(0)} />
            <line x1={VM.left} x2={VM.left + w} y1={y(vmax)} y2={y(vmax)} />
          </g>
          <g className="chart-bars volume-bars">
            {points.map((p, i) =>
              p.count > 0 ? (
                <rect key={p.at} x={VM.left + band * i + band * 0.1} width={Math.max(1, band * 0.8)} y={y(p.count)} height={VM.top + h - y(p.count)}>
                  <title>{`${bucketLabel(p.at, props.interval)}: ${p.count.toLocaleString("en")}`}</title>
                </rect>
              ) : null,
            )}
          </g>
          <g className="chart-axis">
            <text x={VM.left - 6} y={y(vmax)} textAnchor="end" dominantBaseline="middle">{compact(vmax)}</text>
            <text x={VM.left - 6} y={y(0)} textAnchor="end" dominantBaseline="middle">0</text>
            <text x={VM.left} y={VOLUME_HEIGHT - 4}>{bucketLabel(points[0].at, props.interval)}</text>
            {n > 1 && (
              <text x={VM.left + w} y={VOLUME_HEIGHT - 4} textAnchor="end">{bucketLabel(points[n - 1].at, props.interval)}</text>
            )}
          </g>
        </svg>
      )}
    </div>
  );
});

/** The sentiment facet as the dashboard's split bar, above its bars. */
function SentimentSplit({ items }: { items: FacetCount[] }) {
  const of = (k: string) => items.find((i) => i.key === k)?.count ?? 0;
  return <SentimentBar negative={of("negative")} neutral={of("neutral")} positive={of("positive")} label="Sentiment of the matches" />;
}

/** What narrowing the facets offer: each facet's key, or undefined to clear it. */
export interface FacetPicks {
  sentiment?: string;
  platform?: string;
  lang?: string;
  product?: string;
  topic?: string;
  onPick: (facet: "sentiment" | "platform" | "lang" | "product" | "topic", key: string | undefined) => void;
}

/** Every facet of a search: its volume over time and its counts by sentiment, platform, language, product and topic. */
export function SearchFacets(props: { facets: Facets; topicNames: Map<number, string>; picks: FacetPicks }) {
  const { facets, picks } = props;
  const topicName = (key: string) => props.topicNames.get(Number(key)) ?? `topic #${key}`;
  const langName = (key: string) => (key === "und" ? "unknown" : key);
  return (
    <div className="facets" data-testid="search-facets" data-total={facets.total} data-sampled={facets.sample ? "true" : undefined}>
      {facets.sample && (
        <p className="muted small" data-testid="search-facets-sampled">
          Estimated from {compact(facets.sample.posts)} of the matches ({percent(facets.sample.share)} of the posts, chosen by id): each count is scaled up and may be off by a few percent.
        </p>
      )}
      <section className="facet" aria-labelledby="facet-volume-title">
        <h3 className="sub" id="facet-volume-title">
          Matches per {facets.interval} <span className="muted small">(UTC)</span>
        </h3>
        <VolumeChart buckets={facets.buckets} interval={facets.interval} />
      </section>
      {facets.sentiment.length > 0 && <SentimentSplit items={facets.sentiment} />}
      <FacetBars facet="sentiment" title="Sentiment" items={facets.sentiment} total={facets.total} active={picks.sentiment} onPick={(k) => picks.onPick("sentiment", k)} />
      <FacetBars facet="platform" title="Platform" items={facets.platform} total={facets.total} active={picks.platform} onPick={(k) => picks.onPick("platform", k)} />
      <FacetBars facet="lang" title="Language" items={facets.lang} total={facets.total} active={picks.lang} name={langName} onPick={(k) => picks.onPick("lang", k)} />
      <FacetBars facet="product" title="Product" items={facets.product} total={facets.total} active={picks.product} onPick={(k) => picks.onPick("product", k)} />
      <FacetBars facet="topic" title="Topic" items={facets.topic} total={facets.total} active={picks.topic} name={topicName} onPick={(k) => picks.onPick("topic", k)} />
    </div>
  );
}
