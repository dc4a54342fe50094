import { memo } from "react";
import type { KeyedStats, ProductStats } from "../api/schemas";
import { compact, percent, signed } from "../lib/format";
import type { FilterKey } from "../lib/filters";
import { Empty, Panel, SentimentBar } from "./Panel";

/** Rows shown per comparison. */
const TOP = 8;

/**
 * One dimension's keys ranked by volume, each with its sentiment split. A row is a button:
 * choosing it sets that filter, choosing it again clears it.
 */
export const RankedList = memo(function RankedList(props: {
  dimension: FilterKey;
  items: (KeyedStats | ProductStats)[] | undefined;
  active?: string;
  onPick: (dimension: FilterKey, key: string | undefined) => void;
}) {
  const { items } = props;
  if (!items) return <Empty>Loading…</Empty>;
  if (items.length === 0) return <Empty>No {props.dimension} data in this window.</Empty>;
  const max = Math.max(...items.map((i) => i.posts), 1);
  return (
    <ol className="ranked">
      {items.slice(0, TOP).map((item) => {
        const sov = "share_of_voice" in item ? item.share_of_voice : undefined;
        const active = props.active === item.key;
        return (
          <li key={item.key} data-testid={`${props.dimension}-row`} data-key={item.key} data-posts={item.posts}>
            <button
              type="button"
              className={`row ${active ? "active" : ""}`}
              aria-pressed={active}
              title={active ? `Clear the ${props.dimension} filter` : `Show only ${props.dimension} ${item.key}`}
              onClick={() => props.onPick(props.dimension, active ? undefined : item.key)}
            >
              <span className="row-key">{item.key}</span>
              <span className="row-vol" aria-hidden="true">
                <span style={{ width: `${(item.posts / max) * 100}%` }} />
              </span>
              <span className="row-num" data-testid="row-posts">{compact(item.posts)}</span>
              <span className="row-extra" data-testid={sov ? "row-sov" : "row-mean"}>
                {sov ? `${percent(sov.volume)} SoV` : signed(item.sentiment.mean)}
              </span>
              <SentimentBar {...item.sentiment} label={item.key} />
            </button>
          </li>
        );
      })}
    </ol>
  );
});

export function ComparePanel(props: {
  id: string;
  title: string;
  note?: string;
  children: React.ReactNode;
}) {
  return (
    <Panel id={props.id} title={props.title} aside={props.note ? <span className="muted small">{props.note}</span> : undefined}>
      {props.children}
    </Panel>
  );
}
