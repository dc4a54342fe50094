import { memo } from "react";
import type { LanguagesResponse } from "../api/schemas";
import { compact, percent } from "../lib/format";
import { Empty, Panel, SentimentBar } from "./Panel";

/** Rows shown. */
const TOP = 8;

const classes = [
  { key: "supported", label: "supported", hint: "a model measured on the language" },
  { key: "unverified", label: "unverified", hint: "the multilingual model, never measured on the language, or the language is unsure" },
  { key: "unsupported", label: "unsupported", hint: "no model reads the language: left out of every other panel and of alerts" },
] as const;

/**
 * The stream by language, and how much of it Pulse can vouch for: posts in a language no
 * model here reads are counted only here.
 */
export const LanguagesPanel = memo(function LanguagesPanel({ data }: { data: LanguagesResponse | undefined }) {
  const total = data ? data.support.reduce((s, i) => s + i.posts, 0) : 0;
  const count = (key: string) => data?.support.find((i) => i.key === key)?.posts ?? 0;
  const max = data ? Math.max(...data.languages.map((i) => i.posts), 1) : 1;
  return (
    <Panel id="languages" title="By language">
      {!data ? (
        <Empty>Loading…</Empty>
      ) : total === 0 ? (
        <Empty>No posts in this window.</Empty>
      ) : (
        <>
          <ul className="support" aria-label="How far the analysis of each post's language can be trusted">
            {classes.map((c) => (
              <li key={c.key} data-testid={`support-${c.key}`} data-value={count(c.key)} title={c.hint}>
                <span className={`support-dot support-${c.key}`} aria-hidden="true" />
                {c.label} <strong>{percent(count(c.key) / total)}</strong>
              </li>
            ))}
          </ul>
          <ol className="ranked">
            {data.languages.slice(0, TOP).map((item) => (
              <li key={item.key} data-testid="language-row" data-key={item.key} data-posts={item.posts}>
                <div className="row">
                  <span className="row-key">{item.key === "und" ? "unknown" : item.key}</span>
                  <span className="row-vol" aria-hidden="true">
                    <span style={{ width: `${(item.posts / max) * 100}%` }} />
                  </span>
                  <span className="row-num">{compact(item.posts)}</span>
                  <span className="row-extra">{percent(item.posts / total)}</span>
                  <SentimentBar {...item.sentiment} label={item.key} />
                </div>
              </li>
            ))}
          </ol>
        </>
      )}
    </Panel>
  );
});
