import { useEffect, useRef, useState, type FormEvent } from "react";
import { api } from "../api/client";
import type { ExportJob, Topic } from "../api/schemas";
import type { ExportFormat, SearchFilters } from "../lib/search";
import { exportFileName, searchErrorText, topicQueryOf } from "../lib/searchActions";
import { useTopicWrite } from "./Topics";
import { QueryError, QueryInput } from "./TopicQuery";

const formats: { format: ExportFormat; label: string }[] = [
  { format: "csv", label: "CSV" },
  { format: "jsonl", label: "JSON lines" },
];

/** Hands `blob` to the browser as a download named `name`. */
function saveBlob(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  // The click starts the download from the object URL; it may be revoked once that began.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * Every post the search matches, as CSV or JSON lines. The export needs the bearer token, which
 * a link cannot carry, so it is fetched (and can be cancelled) and handed over as a file.
 */
export function ExportButtons({ filters }: { filters: SearchFilters }) {
  const [running, setRunning] = useState<ExportFormat>();
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<string>();
  const abort = useRef<AbortController | null>(null);
  useEffect(() => () => abort.current?.abort(), []);

  const run = async (format: ExportFormat) => {
    const controller = new AbortController();
    abort.current = controller;
    setRunning(format);
    setError(undefined);
    setDone(undefined);
    try {
      const blob = await api.exportSearch(filters, format, controller.signal);
      const name = exportFileName(format, new Date());
      saveBlob(blob, name);
      setDone(`${name} (${(blob.size / 1024).toFixed(blob.size < 10_240 ? 1 : 0)} kB)`);
    } catch (e) {
      if (!controller.signal.aborted) setError(`The export failed: ${searchErrorText(e)}`);
    } finally {
      if (abort.current === controller) abort.current = null;
      setRunning(undefined);
    }
  };

  return (
    <div className="search-export" role="group" aria-label="Export every match">
      <span className="muted small">Export</span>
      {formats.map(({ format, label }) => (
        <button
          key={format}
          type="button"
          className="btn small"
          data-testid={`search-export-${format}`}
          disabled={running !== undefined}
          aria-label={`Export every match as ${label}`}
          onClick={() => void run(format)}
        >
          {running === format ? `${label}…` : label}
        </button>
      ))}
      {running && (
        <button type="button" className="btn small" onClick={() => abort.current?.abort()}>
          Cancel
        </button>
      )}
      <span className="small" role="status" data-testid="search-export-status">
        {error ? <span className="error">{error}</span> : done ? <span className="muted">Downloaded {done}</span> : null}
      </span>
      <ExportJobButton filters={filters} />
    </div>
  );
}

/** How often a running export job is read again. */
const JOB_POLL_MS = 1_500;

/**
 * An export as a job, for searches too large to hold in the browser: the server writes the file
 * (any of its processes, surviving restarts) and gives a link that needs no key, shown here
 * once it is done. Cancelling deletes the job.
 */
function ExportJobButton({ filters }: { filters: SearchFilters }) {
  const [job, setJob] = useState<ExportJob>();
  const [error, setError] = useState<string>();
  const running = job !== undefined && (job.state === "queued" || job.state === "running");

  useEffect(() => {
    if (!running || !job) return;
    const controller = new AbortController();
    const timer = setTimeout(() => {
      api
        .exportJob(job.id, controller.signal)
        .then(setJob)
        .catch((e: unknown) => {
          if (!controller.signal.aborted) setError(`The export job failed: ${searchErrorText(e)}`);
        });
    }, JOB_POLL_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [job, running]);

  const start = async () => {
    setError(undefined);
    try {
      setJob(await api.createExport(filters, "csv"));
    } catch (e) {
      setError(`The export job was refused: ${searchErrorText(e)}`);
    }
  };
  const cancel = async () => {
    if (!job) return;
    const id = job.id;
    setJob(undefined);
    await api.deleteExport(id).catch(() => undefined);
  };

  return (
    <span className="search-export-job" data-testid="search-export-job-status" data-state={job?.state ?? "none"}>
      {!running && (
        <button type="button" className="btn small" data-testid="search-export-job" title="The server writes the file; its link needs no sign-in" onClick={() => void start()}>
          CSV link
        </button>
      )}
      {running && (
        <>
          <span className="muted small">
            Writing… {Math.round(job.progress * 100)}% ({job.rows.toLocaleString()} rows)
          </span>
          <button type="button" className="btn small" onClick={() => void cancel()}>
            Cancel
          </button>
        </>
      )}
      {job?.state === "done" && job.download_url && (
        <a className="small" data-testid="search-export-link" href={job.download_url} download>
          Download {job.rows.toLocaleString()} rows
          {job.expires_at ? ` (until ${new Date(job.expires_at).toLocaleString()})` : ""}
        </a>
      )}
      {job?.state === "failed" && <span className="error small">The export failed: {job.error}</span>}
      {error && <span className="error small">{error}</span>}
    </span>
  );
}

/**
 * "Make a topic" of the search: a name, and the search's query with its filters as fields
 * (editable, previewed as the Topics panel previews). Saving adds it to the topic selector;
 * `onShow` shows the dashboard filtered on it.
 */
export function MakeTopicForm(props: { filters: SearchFilters; onClose: () => void; onShow: (topic: Topic) => void }) {
  const write = useTopicWrite();
  const made = topicQueryOf(props.filters);
  const [name, setName] = useState("");
  const [query, setQuery] = useState(made.query);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ query: string; error: unknown }>();
  const [created, setCreated] = useState<Topic>();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const q = query;
    let topic: Topic | undefined;
    const failed = await write(async () => {
      topic = await api.createTopic({ name: name.trim(), query: q });
    });
    setBusy(false);
    if (failed === undefined && topic) {
      setCreated(topic);
      setError(undefined);
    } else {
      setError({ query: q, error: failed });
    }
  };

  if (created) {
    return (
      <div className="search-form-inline" role="status" data-testid="make-topic-done" data-id={created.id}>
        <p className="small">
          Topic “{created.name}” made: posts from now on are matched against it, and it is in the topic selector.
        </p>
        <button type="button" className="btn small" onClick={() => props.onShow(created)}>
          Show it on the dashboard
        </button>
        <button type="button" className="btn small" onClick={props.onClose}>
          Close
        </button>
      </div>
    );
  }
  return (
    <form className="topic-form make-topic" data-testid="make-topic" aria-label="Make a topic of this search" onSubmit={(e) => void submit(e)}>
      <input aria-label="Topic name" data-testid="make-topic-name" maxLength={200} placeholder="topic name" autoFocus value={name} onChange={(e) => setName(e.target.value)} />
      <QueryInput value={query} onChange={setQuery} testid="make-topic-query" label="Topic query" />
      {made.left.length > 0 && (
        <p className="muted small">
          A topic's query cannot say {made.left.join(", ")}: {made.left.length === 1 ? "it is" : "they are"} left out of the topic.
        </p>
      )}
      <div className="topic-buttons">
        <button type="submit" className="btn" data-testid="make-topic-save" disabled={busy || !name.trim() || !query.trim()}>
          {busy ? "Saving…" : "Make topic"}
        </button>
        <button type="button" className="btn" onClick={props.onClose}>
          Cancel
        </button>
      </div>
      {error && <QueryError query={error.query} error={error.error} testid="make-topic-error" />}
    </form>
  );
}
