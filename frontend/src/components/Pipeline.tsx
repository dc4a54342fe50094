import { memo } from "react";
import type { PipelineResponse } from "../api/schemas";
import { compact, rate, scopeText } from "../lib/format";
import { Empty, Panel } from "./Panel";

export const PipelinePanel = memo(function PipelinePanel(props: {
  pipeline: PipelineResponse | undefined;
  liveRate: number;
  dropped: number;
  fps: number;
}) {
  const p = props.pipeline;
  const g = p?.consumer_group;
  return (
    <Panel id="pipeline" title="Pipeline health">
      {!p ? (
        <Empty>Loading…</Empty>
      ) : (
        <>
          <dl className="kpis">
            <div><dt>Throughput (last min)</dt><dd data-testid="throughput" data-value={p.posts_per_sec}>{rate(p.posts_per_sec)}</dd></div>
            <div><dt>Consumer lag</dt><dd data-testid="lag" data-value={g?.lag ?? ""}>{g ? (g.lag === null ? "unknown" : compact(g.lag)) : "Redis down"}</dd></div>
            <div><dt>Pending (unacked)</dt><dd data-testid="pending" data-value={g?.pending ?? ""}>{g ? compact(g.pending) : "–"}</dd></div>
            <div><dt>Dead-lettered</dt><dd data-testid="dead-letters" data-value={g?.dead_letters ?? ""}>{g ? compact(g.dead_letters) : "–"}</dd></div>
          </dl>
          <p className="small">
            Model{p.models.length === 1 ? "" : "s"}:{" "}
            {p.models.length === 0 ? (
              <span className="muted">no posts in the last minute</span>
            ) : (
              p.models.map((m) => (
                <span key={m.model} className="tag" data-testid="model">
                  {m.model} <span className="muted">{compact(m.posts)}</span>
                </span>
              ))
            )}
          </p>
          {p.sources.length > 0 && (
            <p className="small">
              Sources:{" "}
              {p.sources.map((s) => (
                <span
                  key={s.name}
                  className="tag"
                  data-testid="source"
                  data-connected={s.connected}
                  title={[
                    s.last_error ?? `${s.kind}, connected`,
                    s.last_gap && `last gap ${s.last_gap.at}: ${s.last_gap.reason}`,
                  ]
                    .filter(Boolean)
                    .join("\n")}
                >
                  {s.connected ? "●" : "○"} {s.name}{" "}
                  <span className="muted">
                    {s.connected
                      ? s.lag_seconds === null
                        ? "waiting"
                        : `${compact(Math.round(s.lag_seconds))} s behind`
                      : "disconnected"}
                    {s.gaps > 0 && (
                      <span className="error" data-testid="source-gaps">
                        {" "}
                        · {compact(s.gaps)} {s.gaps === 1 ? "gap" : "gaps"}
                      </span>
                    )}
                  </span>
                </span>
              ))}
            </p>
          )}
          {p.producers.length > 0 && (
            <p className="small" data-testid="producers">
              {p.sharing_per_sec === null ? "Producers:" : `Behind: sharing ${rate(p.sharing_per_sec)} between producers:`}{" "}
              {p.producers.map((pr) => {
                const wait = p.waits.find((w) => w.producer === pr.producer);
                return (
                  <span
                    key={pr.producer}
                    className="tag"
                    data-testid="producer"
                    data-refused={pr.refused}
                    title={[
                      `asks ${rate(pr.asked_per_sec)}, appended ${rate(pr.admitted_per_sec)}`,
                      pr.share_per_sec !== null && `share ${rate(pr.share_per_sec)}`,
                      pr.refused > 0 && `${compact(pr.refused)} events refused over its share`,
                      pr.told_wait_secs !== null && `last told to wait ${pr.told_wait_secs.toFixed(1)} s`,
                      `may send ${scopeText(pr.scope)}`,
                    ]
                      .filter(Boolean)
                      .join("\n")}
                  >
                    {pr.producer}{" "}
                    <span className="muted">
                      {Math.round(pr.share_of_admitted * 100)}%
                      {wait && ` · waits ${wait.mean_wait_secs.toFixed(1)} s`}
                    </span>
                    {pr.scope && (
                      <span className="muted" data-testid="producer-scope">
                        {" "}
                        · {scopeText(pr.scope)}
                      </span>
                    )}
                    {pr.refused > 0 && <span className="error"> · held back</span>}
                  </span>
                );
              })}
            </p>
          )}
          {new Set(p.group_settings.map((m) => m.fingerprint)).size > 1 && (
            <p className="small error" data-testid="settings-differ">
              The group's processes decide entries under different settings:{" "}
              {p.group_settings.map((m) => `${m.consumer} ${m.fingerprint}`).join(", ")}
            </p>
          )}
          <p className="small muted">
            This browser: <span data-testid="live-rate">{rate(props.liveRate)}</span> live posts,{" "}
            <span data-testid="dropped" data-value={props.dropped}>{compact(props.dropped)}</span> dropped by the
            server (slow client), {Math.round(props.fps)} renders/s.
          </p>
        </>
      )}
    </Panel>
  );
});
