import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import type { SavedSearch } from "../api/schemas";
import { ago } from "../lib/format";
import type { SavedFilters } from "../lib/search";
import { searchErrorText } from "../lib/searchActions";

/** The saved searches, shared by the team; refreshed after every change made here. */
export function useSavedSearches() {
  return useQuery({
    queryKey: ["saved-searches"],
    queryFn: api.savedSearches,
    // A server without saved searches answers 404: no use asking again.
    refetchInterval: (query) => (query.state.error instanceof ApiError && query.state.error.status === 404 ? false : 60_000),
    retry: (failures, e) => failures < 1 && !(e instanceof ApiError && e.status < 500),
  });
}

/** A saved search's filters in a line: `platform reddit · lang de · newest`. */
function filtersLine(filters: SavedSearch["filters"], topicNames: Map<number, string>): string {
  return Object.entries(filters)
    .map(([k, v]) => {
      if (k === "topic") return `topic ${topicNames.get(Number(v)) ?? `#${v}`}`;
      if (k === "from" || k === "to") return `${k} ${new Date(String(v)).toLocaleString()}`;
      return `${k} ${v}`;
    })
    .join(" · ");
}

/** One saved search: choosing it runs it; writers may delete it, once confirmed. */
function SavedSearchRow(props: {
  saved: SavedSearch;
  active: boolean;
  canEdit: boolean;
  topicNames: Map<number, string>;
  onRun: (saved: SavedSearch) => void;
}) {
  const { saved } = props;
  const queryClient = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const remove = async () => {
    setBusy(true);
    try {
      await api.deleteSavedSearch(saved.id);
      setError(undefined);
    } catch (e) {
      setError(searchErrorText(e));
    } finally {
      setBusy(false);
      setConfirming(false);
      await queryClient.invalidateQueries({ queryKey: ["saved-searches"] });
    }
  };
  const line = filtersLine(saved.filters, props.topicNames);
  return (
    <li className="saved-search" data-testid="saved-search" data-id={saved.id} data-name={saved.name}>
      <button
        type="button"
        className={`saved-run ${props.active ? "active" : ""}`}
        aria-current={props.active ? "true" : undefined}
        title={`Run: ${saved.query}`}
        onClick={() => props.onRun(saved)}
      >
        <strong>{saved.name}</strong>
        <code className="saved-query">{saved.query}</code>
        <span className="muted small">
          {line && `${line} · `}
          saved {ago(saved.created_at)}
          {saved.created_by ? ` by ${saved.created_by}` : ""}
        </span>
      </button>
      {props.canEdit &&
        (confirming ? (
          <span className="topic-confirm small">
            Delete “{saved.name}”?
            <button type="button" className="btn small danger" data-testid="saved-search-delete-confirm" disabled={busy} onClick={() => void remove()}>
              Delete
            </button>
            <button type="button" className="btn small" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </span>
        ) : (
          <button
            type="button"
            className="btn small"
            data-testid="saved-search-delete"
            aria-label={`Delete the saved search ${saved.name}`}
            onClick={() => setConfirming(true)}
          >
            Delete
          </button>
        ))}
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}

/** The team's saved searches, to run again (and, for writers, delete). */
export function SavedSearchList(props: {
  activeName?: string;
  canEdit: boolean;
  topicNames: Map<number, string>;
  onRun: (saved: SavedSearch) => void;
}) {
  const list = useSavedSearches();
  const items = list.data?.items;
  return (
    <div className="saved-searches" data-testid="saved-searches">
      {list.isError && !items ? (
        <p className="empty">
          {list.error instanceof ApiError && list.error.status === 404
            ? "This server does not keep saved searches yet."
            : `Could not load the saved searches: ${searchErrorText(list.error)}`}
        </p>
      ) : !items ? (
        <p className="empty">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty">{props.canEdit ? "None yet: run a search, then Save it." : "None yet: editors and admins save searches."}</p>
      ) : (
        <ul className="saved-list">
          {items.map((s) => (
            <SavedSearchRow
              key={s.id}
              saved={s}
              active={s.name === props.activeName}
              canEdit={props.canEdit}
              topicNames={props.topicNames}
              onRun={props.onRun}
            />
          ))}
        </ul>
      )}
    </div>
  );
}

/** "Save": a name for the search as it runs now (its query, filters and order). */
export function SaveSearchForm(props: { query: string; filters: SavedFilters; rangeNote?: string; onClose: () => void; onSaved: (s: SavedSearch) => void }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      const saved = await api.saveSearch({ name: name.trim(), query: props.query, filters: props.filters });
      setError(undefined);
      props.onSaved(saved);
    } catch (err) {
      setError(searchErrorText(err));
    } finally {
      setBusy(false);
      await queryClient.invalidateQueries({ queryKey: ["saved-searches"] });
    }
  };
  return (
    <form className="search-form-inline" data-testid="save-search" aria-label="Save this search" onSubmit={(e) => void submit(e)}>
      <label className="inline-field">
        <span>Name</span>
        <input
          data-testid="save-search-name"
          maxLength={200}
          required
          autoFocus
          placeholder="e.g. Refund complaints, DE"
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
      </label>
      <button type="submit" className="btn" data-testid="save-search-submit" disabled={busy || !name.trim()}>
        {busy ? "Saving…" : "Save"}
      </button>
      <button type="button" className="btn" onClick={props.onClose}>
        Cancel
      </button>
      {props.rangeNote && <p className="muted small">{props.rangeNote}</p>}
      {error && (
        <p className="error small" role="alert" data-testid="save-search-error">
          {error}
        </p>
      )}
    </form>
  );
}
