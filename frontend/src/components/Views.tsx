import { useEffect, useRef, useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import { errorText } from "../api/errors";
import type { SavedView } from "../api/schemas";
import type { Filters } from "../lib/filters";
import { filtersOf, PANELS, stateOf, unchanged } from "../lib/views";

/** The caller's saved views and the shared ones; refreshed after every change made here. */
export function useViews() {
  return useQuery({ queryKey: ["views"], queryFn: api.views, refetchInterval: 60_000, retry: 1 });
}

/**
 * Opens the view the address names (`saved_view`) once: its state replaces the filters, except
 * a period the address also names (a digest's link), which stays. A view the caller may not
 * see (or that was deleted) is said so, and the address forgets it.
 */
function useOpenView(filters: Filters, onFilters: (f: Filters) => void): string | undefined {
  const opened = useRef<string | undefined>(undefined);
  const [problem, setProblem] = useState<string>();
  const id = filters.savedView;
  useEffect(() => {
    if (!id || opened.current === id) return;
    opened.current = id;
    const period = filters.since && filters.until ? { since: filters.since, until: filters.until } : undefined;
    api.view(Number(id)).then(
      (v) => {
        setProblem(undefined);
        onFilters(filtersOf(v.id, v.state, period));
      },
      (e) => {
        setProblem(e instanceof ApiError && e.status === 404 ? `Saved view #${id} does not exist or is not shared with you.` : errorText(e));
        onFilters({ ...filters, savedView: undefined });
      },
    );
  }, [id]);
  return problem;
}

/** The panels shown, chosen one by one; none chosen shows every panel. */
function PanelChooser(props: { filters: Filters; onFilters: (f: Filters) => void }) {
  const shown = new Set(props.filters.panels ?? PANELS.map((p) => p.id));
  const toggle = (id: string) => {
    const next = new Set(shown);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    const panels = PANELS.map((p) => p.id).filter((p) => next.has(p));
    props.onFilters({ ...props.filters, panels: panels.length === PANELS.length || panels.length === 0 ? undefined : panels });
  };
  return (
    <details className="panel-chooser" data-testid="panels-chooser">
      <summary className="btn small">Panels ({props.filters.panels?.length ?? PANELS.length}/{PANELS.length})</summary>
      <div className="panel-chooser-list">
        {PANELS.map((p) => (
          <label key={p.id}>
            <input type="checkbox" checked={shown.has(p.id)} onChange={() => toggle(p.id)} data-testid={`panel-toggle-${p.id}`} /> {p.label}
          </label>
        ))}
      </div>
    </details>
  );
}

/** A fixed period shown instead of the rolling window (a digest's link opens one). */
function PeriodChip(props: { filters: Filters; onFilters: (f: Filters) => void }) {
  const { since, until } = props.filters;
  if (!since || !until) return null;
  const fmt = (t: string) => new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  return (
    <span className="tag period" data-testid="period" data-since={since} data-until={until}>
      {fmt(since)} – {fmt(until)}
      <button
        type="button"
        className="btn small"
        aria-label="Back to the rolling window"
        data-testid="period-clear"
        onClick={() => props.onFilters({ ...props.filters, since: undefined, until: undefined })}
      >
        ×
      </button>
    </span>
  );
}

/**
 * Saved views: open one, save the page's state as a new one (private or shared), update or
 * delete one the caller owns, copy its link; and the panels shown.
 */
export function ViewsBar(props: { filters: Filters; onFilters: (f: Filters) => void }) {
  const { filters, onFilters } = props;
  const queryClient = useQueryClient();
  const list = useViews();
  const openProblem = useOpenView(filters, onFilters);
  const [saving, setSaving] = useState(false);
  const [name, setName] = useState("");
  const [shared, setShared] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [note, setNote] = useState<string>();
  const items = list.data?.items ?? [];
  const current: SavedView | undefined = items.find((v) => String(v.id) === filters.savedView);
  const changed = current ? !unchanged(filters, current.state) : false;

  const refresh = () => queryClient.invalidateQueries({ queryKey: ["views"] });
  const act = async (what: () => Promise<void>) => {
    setBusy(true);
    try {
      await what();
      setError(undefined);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
      await refresh();
    }
  };
  const saveAs = (e: FormEvent) => {
    e.preventDefault();
    void act(async () => {
      const v = await api.saveView({ name: name.trim(), state: stateOf(filters), shared });
      setSaving(false);
      setName("");
      setNote(`Saved “${v.name}”${v.shared ? ", shared with every reader" : ", visible to you only"}.`);
      onFilters({ ...filters, savedView: String(v.id) });
    });
  };
  const update = () =>
    current &&
    act(async () => {
      await api.updateView(current.id, { name: current.name, state: stateOf(filters), shared: current.shared });
      setNote(`Updated “${current.name}”.`);
    });
  const remove = () =>
    current &&
    act(async () => {
      await api.deleteView(current.id);
      setNote(`Deleted “${current.name}”.`);
      onFilters({ ...filters, savedView: undefined });
    });
  const copyLink = async () => {
    if (!current) return;
    const link = `${window.location.origin}${window.location.pathname}?saved_view=${current.id}`;
    try {
      await navigator.clipboard.writeText(link);
      setNote(`Link copied: ${link}`);
    } catch {
      setNote(`Link: ${link}`);
    }
  };
  const open = (id: string) => {
    if (!id) return onFilters({ ...filters, savedView: undefined });
    const v = items.find((x) => String(x.id) === id);
    if (v) onFilters(filtersOf(v.id, v.state));
  };

  return (
    <div className="views-bar" data-testid="views-bar">
      <label>
        <span className="muted small">Saved view</span>{" "}
        <select value={filters.savedView ?? ""} onChange={(e) => open(e.target.value)} data-testid="views-select" disabled={busy}>
          <option value="">(none)</option>
          {filters.savedView && !current && <option value={filters.savedView}>view #{filters.savedView}</option>}
          {items.map((v) => (
            <option key={v.id} value={String(v.id)}>
              {v.name}
              {v.shared ? " · shared" : " · private"}
            </option>
          ))}
        </select>
      </label>
      {current && changed && (
        <span className="tag" data-testid="view-changed">
          changed
        </span>
      )}
      {current?.editable && changed && (
        <button type="button" className="btn small" data-testid="view-update" disabled={busy} onClick={() => void update()}>
          Update view
        </button>
      )}
      {current && (
        <button type="button" className="btn small" data-testid="view-copy-link" onClick={() => void copyLink()}>
          Copy link
        </button>
      )}
      {current?.editable && (
        <button type="button" className="btn small" data-testid="view-delete" disabled={busy} onClick={() => void remove()}>
          Delete view
        </button>
      )}
      {saving ? (
        <form className="view-form" onSubmit={saveAs} aria-label="Save this view">
          <input
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="Name this view"
            maxLength={200}
            required
            aria-label="View name"
            data-testid="view-name"
          />
          <label className="small">
            <input type="checkbox" checked={shared} onChange={(e) => setShared(e.target.checked)} data-testid="view-shared" /> share with every reader
          </label>
          <button type="submit" className="btn small" disabled={busy || !name.trim()} data-testid="view-save">
            Save
          </button>
          <button type="button" className="btn small" onClick={() => setSaving(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <button type="button" className="btn small" data-testid="view-save-as" onClick={() => setSaving(true)}>
          Save view…
        </button>
      )}
      <PanelChooser filters={filters} onFilters={onFilters} />
      <PeriodChip filters={filters} onFilters={onFilters} />
      {(error ?? openProblem) && (
        <span className="error small" role="alert" data-testid="view-error">
          {error ?? openProblem}
        </span>
      )}
      {note && !error && (
        <span className="muted small" role="status" data-testid="view-note">
          {note}
        </span>
      )}
    </div>
  );
}
