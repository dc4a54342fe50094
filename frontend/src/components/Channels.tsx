import { memo, useState } from "react";
import type { Channel, ChannelList, TestOutcome } from "../api/schemas";
import { ago, clock } from "../lib/format";
import { Empty, Panel } from "./Panel";

const kindLabel: Record<Channel["kind"], string> = {
  webhook: "Webhook",
  slack: "Slack",
  teams: "Teams",
  pagerduty: "PagerDuty",
  email: "Email",
};

function LastDelivery({ c }: { c: Channel }) {
  const d = c.last_delivery;
  if (!d) return <span className="muted">no delivery yet</span>;
  const what = d.event === "resolve" ? "resolution" : d.event === "digest" ? "digest" : "alert";
  const outcome =
    d.status === "delivered"
      ? `delivered${d.last_status ? ` (${d.last_status})` : ""}`
      : d.status === "dead"
        ? `gave up after ${d.attempts} attempts`
        : d.attempts > 0
          ? `retrying (${d.attempts} failed)`
          : "pending";
  return (
    <span className={d.status === "delivered" ? "" : d.status === "dead" ? "error" : "muted"} title={d.last_error ?? undefined}>
      {what} #{d.alert_id ?? d.digest_id}: {outcome}, {ago(d.at)}
      {d.status !== "delivered" && d.last_error ? ` · ${d.last_error}` : ""}
    </span>
  );
}

/** The alert channels with how their last delivery went, and a test message for each. */
export const ChannelsPanel = memo(function ChannelsPanel(props: {
  list: ChannelList | undefined;
  forbidden: boolean;
  error: string | undefined;
  onTest: (id: number) => Promise<TestOutcome>;
}) {
  const [testing, setTesting] = useState<number>();
  const [results, setResults] = useState<Record<number, string>>({});
  const test = async (id: number) => {
    setTesting(id);
    try {
      const r = await props.onTest(id);
      setResults((s) => ({ ...s, [id]: r.delivered ? `test delivered (${r.status})` : `test failed: ${r.error ?? r.status}` }));
    } catch (e) {
      setResults((s) => ({ ...s, [id]: `test failed: ${(e as Error).message}` }));
    } finally {
      setTesting(undefined);
    }
  };
  const items = props.list?.items;
  return (
    <Panel id="alert-channels" title="Alert channels" aside={items && <span className="muted small">{items.length}</span>}>
      {props.forbidden ? (
        <Empty>Alert channels are managed by admins.</Empty>
      ) : props.error && !items ? (
        <Empty>Could not load the channels: {props.error}</Empty>
      ) : !items ? (
        <Empty>Loading…</Empty>
      ) : items.length === 0 ? (
        <Empty>No channels: add Slack, Teams, PagerDuty, email or a webhook with POST /api/v1/webhooks.</Empty>
      ) : (
        <ul className="channels">
          {items.map((c) => (
            <li key={c.id} data-testid="channel" data-id={c.id} data-kind={c.kind} data-last={c.last_delivery?.status ?? "none"}>
              <div>
                <span className="badge small">{kindLabel[c.kind]}</span> <strong>{c.name || c.url}</strong>
                {c.min_severity !== "info" && <span className="tag">{c.min_severity}+</span>}
                {c.quiet_hours && (
                  <span className="tag" title={`Only critical alerts go at once from ${c.quiet_hours.from} to ${c.quiet_hours.to}`}>
                    quiet {c.quiet_hours.from}–{c.quiet_hours.to}
                  </span>
                )}
                {c.held_until && (
                  <span className="tag" title="Its receiver asked for a wait: nothing is sent to it until then">
                    held until {clock(c.held_until)}
                  </span>
                )}
                {!c.enabled && <span className="tag">off</span>}
              </div>
              <div className="small">
                <LastDelivery c={c} />
              </div>
              <div className="small">
                <button type="button" className="btn" data-testid="channel-test" disabled={testing === c.id} onClick={() => void test(c.id)}>
                  {testing === c.id ? "Sending…" : "Send test"}
                </button>{" "}
                {results[c.id] && (
                  <span data-testid="channel-test-result" role="status">
                    {results[c.id]}
                  </span>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
});
