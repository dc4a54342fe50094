import { useCallback, useEffect, useId, useMemo, useState, type FormEvent } from "react";
import type { SavedSearch, Story, Topic } from "../api/schemas";
import { labelFilters, type Filters } from "../lib/filters";
import { compact } from "../lib/format";
import { rangeNames, searchFilters, searchRanges, type SearchRange, type SearchState, type View } from "../lib/search";
import { fromSaved, narrowed, savedFilters, searchErrorText } from "../lib/searchActions";
import { useSearch, type SearchRun } from "../hooks/useSearch";
import { Empty } from "./Panel";
import { ExportButtons, MakeTopicForm } from "./SearchActions";
import { SearchFacets, type FacetPicks } from "./SearchFacets";
import { MoreHits, SearchHitRow } from "./SearchHits";
import { SaveSearchForm, SavedSearchList } from "./SavedSearches";
import { QueryError, QueryField } from "./TopicQuery";

/** Queries to start from, each a button that runs it. */
const EXAMPLES = ['refund* NOT "gift card"', "battery NEAR/3 drain*", "#PulsePhone OR @pulse", "cancel* lang:de"];

/** The query language in a few lines, for whoever has not read docs/topics.md. */
function QueryHelp() {
  return (
    <details className="search-help small">
      <summary>Query language</summary>
      <ul>
        <li><code>refund money</code> both words · <code>refund OR money</code> either · <code>refund NOT "gift card"</code> without the phrase</li>
        <li><code>cancel*</code> any word starting so · <code>"pulse cloud"</code> the words in this order · <code>#tag</code>, <code>@handle</code></li>
        <li><code>battery NEAR/3 drain*</code> at most 3 words apart · <code>( … )</code> grouping</li>
        <li>Fields: <code>platform:</code> <code>lang:</code> <code>country:</code> <code>city:</code> <code>product:</code> <code>channel:</code> <code>author:</code> <code>site:</code> <code>links:</code></li>
        <li>Case and accents do not matter; words are whole (<code>app</code> is not “apple”: use <code>app*</code>).</li>
      </ul>
    </details>
  );
}

/** The search's own filters, set from the facets, each a button that clears it. */
function SearchOnlyFilters(props: { search: SearchState; onSearch: (s: SearchState) => void }) {
  const { search } = props;
  const chips = [
    search.sentiment && { key: "sentiment" as const, text: `sentiment: ${search.sentiment}` },
    search.lang && { key: "lang" as const, text: `language: ${search.lang === "und" ? "unknown" : search.lang}` },
  ].filter((c): c is { key: "sentiment" | "lang"; text: string } => !!c);
  if (chips.length === 0) return null;
  return (
    <span className="search-chips">
      {chips.map((c) => (
        <button
          key={c.key}
          type="button"
          className="btn small chip"
          data-testid={`search-filter-${c.key}`}
          aria-label={`Remove the filter ${c.text}`}
          onClick={() => props.onSearch({ ...search, [c.key]: undefined })}
        >
          {c.text} <span aria-hidden="true">✕</span>
        </button>
      ))}
    </span>
  );
}

/** The query box (Enter runs it), its order and range, and the parser's refusal where it occurred. */
function SearchBox(props: {
  search: SearchState;
  onSearch: (s: SearchState) => void;
  onRun: (q: string) => void;
  error?: { query: string; error: unknown };
  running: boolean;
}) {
  const { search } = props;
  const [draft, setDraft] = useState(search.q);
  // Back and forward, and a saved search, change the query from outside.
  useEffect(() => setDraft(search.q), [search.q]);
  const errorId = useId();
  const orderName = useId();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (draft.trim()) props.onRun(draft.trim());
  };
  const ranges = searchRanges.filter((r) => r !== "custom" || search.range === "custom");
  const rangeText = (r: SearchRange) =>
    r === "custom"
      ? `${rangeNames.custom}: ${search.from ? new Date(search.from).toLocaleDateString() : "…"} – ${search.to ? new Date(search.to).toLocaleDateString() : "now"}`
      : rangeNames[r];
  // The refusal belongs to the query that was run, and shows until that query is edited.
  const refusal = props.error && props.error.query.trim() === draft.trim() ? props.error : undefined;
  return (
    <form role="search" aria-label="Search stored posts" className="search-box" data-testid="search-form" onSubmit={submit}>
      <div className="search-line">
        <QueryField
          value={draft}
          onChange={setDraft}
          testid="search-query"
          label="Search query"
          placeholder='Search every stored post, e.g. refund* NOT "gift card"'
          errorId={refusal ? errorId : undefined}
        />
        <button type="submit" className="btn primary" data-testid="search-submit" disabled={!draft.trim()}>
          {props.running ? "Searching…" : "Search"}
        </button>
      </div>
      {refusal && (
        <QueryError
          query={refusal.query}
          error={refusal.error}
          testid="search-error"
          id={errorId}
          text={searchErrorText(refusal.error)}
        />
      )}
      <div className="search-options">
        <fieldset className="segmented" data-testid="search-order">
          <legend className="sr-only">Order</legend>
          {(["newest", "relevance"] as const).map((o) => (
            <label key={o} className={search.order === o ? "checked" : undefined}>
              <input
                type="radio"
                name={orderName}
                value={o}
                checked={search.order === o}
                data-testid={`search-order-${o}`}
                onChange={() => props.onSearch({ ...search, order: o })}
              />
              {o === "newest" ? "Newest" : "Most relevant"}
            </label>
          ))}
        </fieldset>
        <label className="inline-field">
          <span>Range</span>
          <select
            data-testid="search-range"
            value={search.range}
            onChange={(e) => props.onSearch({ ...search, range: e.target.value as SearchRange, from: undefined, to: undefined })}
          >
            {ranges.map((r) => (
              <option key={r} value={r}>{rangeText(r)}</option>
            ))}
          </select>
        </label>
        <SearchOnlyFilters search={search} onSearch={props.onSearch} />
        <QueryHelp />
      </div>
    </form>
  );
}

/** The page's search in a line: how many posts match, how many are shown, and how. */
function SearchSummary(props: { total?: number; estimated?: boolean; shown: number; more: boolean; order: SearchState["order"] }) {
  const { total, shown } = props;
  const order = props.order === "newest" ? "newest first" : "most relevant first";
  let text: string;
  if (total !== undefined) text = `${props.estimated ? "about " : ""}${total.toLocaleString("en")} ${total === 1 ? "post matches" : "posts match"} · showing ${compact(shown)}, ${order}`;
  else text = `${compact(shown)} ${shown === 1 ? "post" : "posts"}${props.more ? " so far" : ""}, ${order}`;
  return (
    <p className="search-summary" role="status" data-testid="search-summary" data-total={total} data-shown={shown}>
      {text}
    </p>
  );
}

/**
 * The Search view: every stored post a query of the topics language matches, with the
 * dashboard's filters (the topic selector included; not its window: a search has its own
 * range), newest first or by relevance, the query's words marked, more as the list is
 * scrolled; facets of every match; exports; saved searches; and a topic made of the search.
 */
export default function SearchView(props: {
  filters: Filters;
  onFilters: (f: Filters) => void;
  search: SearchState;
  onSearch: (s: SearchState, opts?: { replace?: boolean }) => void;
  onView: (v: View) => void;
  topicNames: Map<number, string>;
  stories: Story[] | undefined;
  canEdit: boolean;
}) {
  const { filters, search, onSearch } = props;
  // Asking again (the same query, Enter) runs it afresh: new posts, and a relative range moved on.
  const [reruns, setReruns] = useState(0);
  const [activeSaved, setActiveSaved] = useState<string>();
  const [open, setOpen] = useState<"save" | "topic">();
  const labelKey = JSON.stringify(labelFilters(filters));
  const searchKey = JSON.stringify(search);
  const run = useMemo<SearchRun | undefined>(() => {
    if (!search.q.trim()) return undefined;
    const at = Date.now();
    return { filters: searchFilters(filters, search, at), order: search.order, at };
    // Keyed by the values, not the objects: the window (not a search filter) changes `filters`.
  }, [labelKey, searchKey, reruns]);
  useEffect(() => setOpen(undefined), [run]);

  const result = useSearch(run);
  const pages = result.data?.pages;
  const hits = useMemo(() => pages?.flatMap((p) => p.items) ?? [], [pages]);
  const first = pages?.[0];
  let emptyPages = 0;
  let emptyChecked = 0;
  for (let i = (pages?.length ?? 0) - 1; i > 0 && pages![i].items.length === 0; i--) {
    emptyPages++;
    emptyChecked += pages![i].checked;
  }
  const stories = useMemo(() => new Map((props.stories ?? []).map((s) => [s.id, s])), [props.stories]);
  const { fetchNextPage } = result;
  const more = useCallback(() => void fetchNextPage({ cancelRefetch: false }), [fetchNextPage]);

  const runQuery = (q: string) => {
    setActiveSaved(undefined);
    if (q === search.q) setReruns((n) => n + 1);
    else onSearch({ ...search, q });
  };
  const runSaved = (saved: SavedSearch) => {
    const next = fromSaved(saved, filters.window);
    setActiveSaved(saved.name);
    props.onFilters(next.filters);
    onSearch(next.state, { replace: true });
    setReruns((n) => n + 1);
  };
  const picks: FacetPicks = {
    sentiment: search.sentiment,
    lang: search.lang,
    platform: filters.platform,
    product: filters.product,
    topic: filters.topic,
    onPick: (facet, key) => {
      if (facet === "sentiment") onSearch({ ...search, sentiment: key as SearchState["sentiment"] });
      else if (facet === "lang") onSearch({ ...search, lang: key });
      else props.onFilters({ ...filters, [facet]: key });
    },
  };
  const clearFilters = () => {
    props.onFilters({ window: filters.window });
    onSearch({ ...search, sentiment: undefined, lang: undefined, range: "all", from: undefined, to: undefined }, { replace: true });
  };
  const watchTopic = (topic: Topic) => {
    props.onFilters({ ...filters, topic: String(topic.id) });
    props.onView("dashboard");
  };

  const firstError = result.isError && !first ? result.error : undefined;
  const queryRefused = firstError && (firstError as { code?: string }).code === "invalid_topic_query";
  const rangeNote =
    search.range !== "all" && search.range !== "custom"
      ? `The range (${rangeNames[search.range].toLowerCase()}) is not saved: the saved search runs over all time.`
      : undefined;

  return (
    <main className="search-view" data-testid="search-view" aria-labelledby="search-title">
      <h2 id="search-title" className="sr-only">Search</h2>
      <SearchBox
        search={search}
        onSearch={onSearch}
        onRun={runQuery}
        running={result.isFetching && !result.isFetchingNextPage}
        error={queryRefused && run ? { query: run.filters.q, error: firstError } : undefined}
      />
      <div className="search-layout">
        <div className="search-head">
          {run && first && (
            <>
              <SearchSummary total={first.facets?.total} estimated={!!first.facets?.sample} shown={hits.length} more={!!result.hasNextPage} order={run.order} />
              <a className="skip small" href="#search-results">Skip to the results</a>
              <div className="search-actions">
                <ExportButtons filters={run.filters} />
                {props.canEdit && (
                  <span className="search-writes">
                    <button type="button" className="btn small" data-testid="search-save" aria-expanded={open === "save"} onClick={() => setOpen(open === "save" ? undefined : "save")}>
                      Save search…
                    </button>
                    <button type="button" className="btn small" data-testid="search-make-topic" aria-expanded={open === "topic"} onClick={() => setOpen(open === "topic" ? undefined : "topic")}>
                      Make a topic…
                    </button>
                  </span>
                )}
              </div>
              {open === "save" && (
                <SaveSearchForm
                  query={run.filters.q}
                  filters={savedFilters(filters, search)}
                  rangeNote={rangeNote}
                  onClose={() => setOpen(undefined)}
                  onSaved={(s) => {
                    setActiveSaved(s.name);
                    setOpen(undefined);
                  }}
                />
              )}
              {open === "topic" && <MakeTopicForm filters={run.filters} onClose={() => setOpen(undefined)} onShow={watchTopic} />}
            </>
          )}
        </div>
        <aside className="search-side" aria-label="Facets and saved searches">
          <section className="search-card" aria-labelledby="search-facets-title">
            <h2 id="search-facets-title">Facets</h2>
            {!run ? (
              <Empty>Counts of every match by sentiment, platform, language, product, topic and time show here.</Empty>
            ) : first?.facets ? (
              <SearchFacets facets={first.facets} topicNames={props.topicNames} picks={picks} />
            ) : first?.facetsRefused ? (
              <Empty>
                <span data-testid="search-facets-refused">Too many posts to count one by one: {first.facetsRefused}.</span>
              </Empty>
            ) : firstError ? (
              <Empty>No facets: the search failed.</Empty>
            ) : (
              <Empty>Counting…</Empty>
            )}
          </section>
          <section className="search-card" aria-labelledby="saved-searches-title">
            <h2 id="saved-searches-title">Saved searches</h2>
            <SavedSearchList activeName={activeSaved} canEdit={props.canEdit} topicNames={props.topicNames} onRun={runSaved} />
          </section>
        </aside>
        <section className="search-results" aria-labelledby="search-results-title">
          <h2 id="search-results-title" className="sr-only">Results</h2>
          {!run ? (
            <div className="search-start">
              <Empty>Search every post Pulse stores, in every language, with the query language of topics. Press Enter to run.</Empty>
              <p className="small muted">Try:</p>
              <ul className="search-examples">
                {EXAMPLES.map((q) => (
                  <li key={q}>
                    <button type="button" className="btn small" onClick={() => runQuery(q)}>
                      <code>{q}</code>
                    </button>
                  </li>
                ))}
              </ul>
            </div>
          ) : firstError ? (
            queryRefused ? (
              <Empty>Fix the query above and press Enter.</Empty>
            ) : (
              <div className="error" role="alert" data-testid="search-failed" data-code={(firstError as { code?: string }).code}>
                <p>{searchErrorText(firstError)}</p>
                <button type="button" className="btn" onClick={() => void result.refetch()}>
                  Try again
                </button>
              </div>
            )
          ) : !first ? (
            <Empty>Searching…</Empty>
          ) : hits.length === 0 && !result.hasNextPage ? (
            <div data-testid="search-empty">
              <Empty>
                No post matches <code>{run.filters.q}</code>
                {narrowed(filters, search) ? " with these filters." : "."}
              </Empty>
              {narrowed(filters, search) && (
                <button type="button" className="btn small" onClick={clearFilters}>
                  Search without filters
                </button>
              )}
            </div>
          ) : (
            <ol id="search-results" className="posts hits" tabIndex={-1} aria-busy={result.isFetchingNextPage} data-testid="search-hits">
              {hits.map((h) => (
                <SearchHitRow key={h.post.id} hit={h} topicNames={props.topicNames} stories={stories} />
              ))}
            </ol>
          )}
          {run && first && (
            <MoreHits
              hasMore={!!result.hasNextPage}
              loading={result.isFetchingNextPage}
              emptyPages={emptyPages}
              checked={emptyChecked}
              error={result.isFetchNextPageError ? searchErrorText(result.error) : undefined}
              onMore={more}
            />
          )}
          {run && first && !result.hasNextPage && hits.length > 0 && (
            <p className="muted small search-end" data-testid="search-end">
              End of the results.
            </p>
          )}
        </section>
      </div>
    </main>
  );
}
