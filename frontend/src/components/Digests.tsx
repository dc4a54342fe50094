import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type DigestScopeInput, type NewDigestSchedule } from "../api/client";
import { errorText } from "../api/errors";
import type { Channel, DigestPreview, DigestSchedule, Topic } from "../api/schemas";
import { useViews } from "./Views";
import { Empty, Panel } from "./Panel";

const weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] as const;
const DAY_MS = 86_400_000;

/** The e-mail's HTML with its chart inline, as a mail client shows it. */
export function previewHtml(p: DigestPreview): string {
  return p.rendered.html.replaceAll("cid:digest-chart", `data:image/png;base64,${p.rendered.chart_png}`);
}

function when(s: DigestSchedule): string {
  const day = s.weekday ? `${weekdays[s.weekday - 1][0].toUpperCase()}${weekdays[s.weekday - 1].slice(1)}s` : "daily";
  return `${day} at ${s.at} ${s.timezone}`;
}

/** A digest's preview, rendered as its e-mail in a frame that runs nothing. */
function PreviewView({ preview, onClose }: { preview: DigestPreview; onClose: () => void }) {
  return (
    <div className="digest-preview" data-testid="digest-preview" data-posts={preview.posts}>
      <div className="small">
        <strong>{preview.rendered.subject}</strong> · {preview.posts} posts · {(preview.negative_share * 100).toFixed(1)}% negative ·{" "}
        <a href={preview.link} data-testid="digest-preview-link">
          open the period
        </a>{" "}
        <button type="button" className="btn small" onClick={onClose}>
          Close
        </button>
      </div>
      <iframe
        title={`Preview: ${preview.rendered.subject}`}
        sandbox=""
        srcDoc={previewHtml(preview)}
        className="digest-frame"
        data-testid="digest-preview-frame"
      />
    </div>
  );
}

/** A new schedule; channels are picked from the list where the caller may read it (admins). */
function NewSchedule(props: { topics: Topic[]; channels: Channel[] | undefined; topic?: string; onDone: () => void }) {
  const views = useViews();
  const [name, setName] = useState("");
  const [scope, setScope] = useState(props.topic ?? "");
  const [cadence, setCadence] = useState<"daily" | "weekly">("weekly");
  const [weekday, setWeekday] = useState<string>("monday");
  const [at, setAt] = useState("08:00");
  const [timezone, setTimezone] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const [picked, setPicked] = useState<number[]>([]);
  const [typed, setTyped] = useState("");
  const [view, setView] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const usable = props.channels?.filter((c) => c.kind !== "pagerduty");
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const channels = usable ? picked : typed.split(/[\s,]+/).filter(Boolean).map(Number);
    const body: NewDigestSchedule = {
      name: name.trim(),
      scope: scope ? { topic: Number(scope) } : "all",
      cadence,
      at,
      timezone: timezone.trim(),
      channels,
    };
    if (cadence === "weekly") body.weekday = weekday;
    if (view) body.view = Number(view);
    setBusy(true);
    try {
      await api.createDigestSchedule(body);
      setError(undefined);
      props.onDone();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="topic-form digest-form" onSubmit={(e) => void submit(e)} aria-label="New digest schedule" data-testid="digest-form">
      <input value={name} onChange={(e) => setName(e.target.value)} placeholder="Name (Monday report)" required maxLength={200} aria-label="Name" data-testid="digest-name" />
      <label className="small">
        About{" "}
        <select value={scope} onChange={(e) => setScope(e.target.value)} data-testid="digest-scope">
          <option value="">every post</option>
          {props.topics.map((t) => (
            <option key={t.id} value={String(t.id)}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      <span className="small">
        <select value={cadence} onChange={(e) => setCadence(e.target.value as "daily" | "weekly")} aria-label="How often" data-testid="digest-cadence">
          <option value="daily">daily</option>
          <option value="weekly">weekly</option>
        </select>{" "}
        {cadence === "weekly" && (
          <select value={weekday} onChange={(e) => setWeekday(e.target.value)} aria-label="Day" data-testid="digest-weekday">
            {weekdays.map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        )}{" "}
        at <input type="time" value={at} onChange={(e) => setAt(e.target.value)} aria-label="Time" data-testid="digest-at" required />{" "}
        <input value={timezone} onChange={(e) => setTimezone(e.target.value)} aria-label="Time zone" data-testid="digest-timezone" size={16} required />
      </span>
      {usable ? (
        <fieldset className="small" data-testid="digest-channels">
          <legend>Send to</legend>
          {usable.length === 0 && <span className="muted">No e-mail, Slack, Teams or webhook channel yet.</span>}
          {usable.map((c) => (
            <label key={c.id}>
              <input
                type="checkbox"
                checked={picked.includes(c.id)}
                onChange={(e) => setPicked((p) => (e.target.checked ? [...p, c.id] : p.filter((x) => x !== c.id)))}
                data-testid={`digest-channel-${c.id}`}
              />{" "}
              {c.kind} {c.name || c.url}
            </label>
          ))}
        </fieldset>
      ) : (
        <input value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="Channel ids (ask an admin), e.g. 1, 4" aria-label="Channel ids" data-testid="digest-channel-ids" />
      )}
      <label className="small">
        Link opens{" "}
        <select value={view} onChange={(e) => setView(e.target.value)} data-testid="digest-view">
          <option value="">the period and scope</option>
          {views.data?.items
            .filter((v) => v.shared)
            .map((v) => (
              <option key={v.id} value={String(v.id)}>
                view: {v.name}
              </option>
            ))}
        </select>
      </label>
      <span>
        <button type="submit" className="btn small" disabled={busy} data-testid="digest-create">
          Schedule
        </button>{" "}
        <button type="button" className="btn small" onClick={props.onDone}>
          Cancel
        </button>
      </span>
      {error && (
        <p className="error small" role="alert" data-testid="digest-error">
          {error}
        </p>
      )}
    </form>
  );
}

/**
 * Digest schedules (editors manage them) and previews: any reader previews the page's scope
 * over the last day or week, or a schedule's next digest, rendered as its e-mail.
 */
export function DigestsPanel(props: { topics: Topic[] | undefined; channels: Channel[] | undefined; topic?: string; canEdit: boolean }) {
  const queryClient = useQueryClient();
  const schedules = useQuery({ queryKey: ["digest-schedules"], queryFn: api.digestSchedules, refetchInterval: 30_000, retry: 1 });
  const [adding, setAdding] = useState(false);
  const [preview, setPreview] = useState<DigestPreview>();
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<string>();
  const [note, setNote] = useState<string>();
  const topics = props.topics ?? [];
  const topicName = (id: number | null) => (id === null ? "every post" : (topics.find((t) => t.id === id)?.name ?? `topic #${id}`));
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["digest-schedules"] });

  const act = async (what: string, run: () => Promise<void>) => {
    setBusy(what);
    try {
      await run();
      setError(undefined);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(undefined);
    }
  };
  const showPreview = (scope: DigestScopeInput, days: number) =>
    act("preview", async () => {
      // Up to the end of this minute, as `send now` does.
      const to = new Date(Math.ceil(Date.now() / 60_000) * 60_000);
      setPreview(await api.previewDigest(scope, new Date(to.getTime() - days * DAY_MS).toISOString(), to.toISOString()));
    });
  const scopeOf = (topic: number | null): DigestScopeInput => (topic === null ? "all" : { topic });
  const items = schedules.data?.items;

  return (
    <Panel
      id="digests"
      title="Digests"
      aside={
        <span className="small">
          <button
            type="button"
            className="btn small"
            data-testid="digest-preview-button"
            disabled={busy === "preview"}
            onClick={() => void showPreview(props.topic ? { topic: Number(props.topic) } : "all", 7)}
          >
            Preview this week
          </button>{" "}
          {props.canEdit && !adding && (
            <button type="button" className="btn small" data-testid="digest-new" onClick={() => setAdding(true)}>
              New schedule
            </button>
          )}
        </span>
      }
    >
      {adding && (
        <NewSchedule
          topics={topics}
          channels={props.channels}
          topic={props.topic}
          onDone={() => {
            setAdding(false);
            void refresh();
          }}
        />
      )}
      {error && (
        <p className="error small" role="alert" data-testid="digests-error">
          {error}
        </p>
      )}
      {note && <p className="muted small" role="status" data-testid="digests-note">{note}</p>}
      {preview && <PreviewView preview={preview} onClose={() => setPreview(undefined)} />}
      {schedules.isError && !items ? (
        <Empty>Could not load the schedules: {errorText(schedules.error)}</Empty>
      ) : !items ? (
        <Empty>Loading…</Empty>
      ) : items.length === 0 ? (
        <Empty>No digest is scheduled. A digest sends how a day or a week went to e-mail, Slack, Teams or a webhook.</Empty>
      ) : (
        <ul className="channels">
          {items.map((s) => (
            <li key={s.id} data-testid="digest-schedule" data-id={s.id} data-enabled={s.enabled}>
              <div>
                <strong>{s.name}</strong> <span className="muted small">· {topicName(s.topic)} · {when(s)}</span>
                {!s.enabled && <span className="tag">paused</span>}
                {s.view !== null && <span className="tag">view #{s.view}</span>}
              </div>
              <div className="small">
                <button
                  type="button"
                  className="btn small"
                  data-testid="digest-schedule-preview"
                  onClick={() => void showPreview(scopeOf(s.topic), s.cadence === "weekly" ? 7 : 1)}
                >
                  Preview
                </button>{" "}
                {props.canEdit && (
                  <>
                    <button
                      type="button"
                      className="btn small"
                      data-testid="digest-send"
                      disabled={busy !== undefined}
                      onClick={() =>
                        void act(`send-${s.id}`, async () => {
                          const sent = await api.sendDigestNow(s.id);
                          setNote(`“${s.name}” sent: ${sent.posts} posts, ${(sent.negative_share * 100).toFixed(1)}% negative.`);
                        })
                      }
                    >
                      Send now
                    </button>{" "}
                    <button
                      type="button"
                      className="btn small"
                      data-testid="digest-toggle"
                      disabled={busy !== undefined}
                      onClick={() =>
                        void act(`toggle-${s.id}`, async () => {
                          await api.updateDigestSchedule(s.id, { enabled: !s.enabled });
                          await refresh();
                        })
                      }
                    >
                      {s.enabled ? "Pause" : "Resume"}
                    </button>{" "}
                    <button
                      type="button"
                      className="btn small danger"
                      data-testid="digest-delete"
                      aria-label={`Delete the digest schedule ${s.name}`}
                      disabled={busy !== undefined}
                      onClick={() =>
                        void act(`delete-${s.id}`, async () => {
                          await api.deleteDigestSchedule(s.id);
                          await refresh();
                        })
                      }
                    >
                      Delete
                    </button>
                  </>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
