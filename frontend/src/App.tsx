import { lazy, Suspense, useCallback, useEffect, useMemo, useState, type MouseEvent, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { api } from "./api/client";
import type { Stats } from "./api/schemas";
import { alertInView, hasLabelFilters, liveFilter, trendScope, type FilterKey } from "./lib/filters";
import { topicNames } from "./lib/topics";
import { countChartRender } from "./lib/counters";
import type { ConnectionState } from "./lib/socket";
import { useTheme } from "./lib/theme";
import { mergeViral, notDeleted } from "./state/live";
import { useFilters } from "./hooks/useFilters";
import { useSearchState } from "./hooks/useSearchState";
import { withSearch, type SearchState, type View } from "./lib/search";
import { useLive, useLiveRates } from "./hooks/useLive";
import { usePanelData } from "./hooks/usePanelData";
import { FilterBar } from "./components/FilterBar";
import { OverallPanel } from "./components/Overall";
import { TrendPanel } from "./components/Trend";
import { EmotionsPanel } from "./components/Emotions";
import { LanguagesPanel } from "./components/Languages";
import { ComparePanel, RankedList } from "./components/Ranked";
import { StreamPanel } from "./components/Stream";
import { AlertsPanel } from "./components/Alerts";
import { ViralPanel } from "./components/Viral";
import { StoriesPanel } from "./components/Stories";
import { ForecastPanel } from "./components/Forecast";
import { PipelinePanel } from "./components/Pipeline";
import { ChannelsPanel } from "./components/Channels";
import { TopicsPanel } from "./components/Topics";
import { Empty } from "./components/Panel";
import { ViewsBar } from "./components/Views";
import { DigestsPanel } from "./components/Digests";
import { ReviewPanel } from "./components/Review";
import { shows, type PanelId } from "./lib/views";

/** The Search view is a chunk of its own, loaded when first shown. */
const SearchView = lazy(() => import("./components/Search"));

/** The page's views, as links (each has its URL, so it opens in a new tab too). */
function ViewLinks(props: { view: View; search: SearchState; onView: (v: View) => void }) {
  const views: { view: View; label: string }[] = [
    { view: "dashboard", label: "Dashboard" },
    { view: "search", label: "Search" },
  ];
  const go = (e: MouseEvent<HTMLAnchorElement>, view: View) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || e.button !== 0) return;
    e.preventDefault();
    if (view !== props.view) props.onView(view);
  };
  return (
    <nav className="views" aria-label="Views">
      {views.map(({ view, label }) => {
        const qs = withSearch(window.location.search, view, props.search);
        return (
          <a
            key={view}
            href={qs ? `?${qs}` : window.location.pathname}
            className={`view-link ${props.view === view ? "active" : ""}`}
            aria-current={props.view === view ? "page" : undefined}
            data-testid={`view-${view}`}
            onClick={(e) => go(e, view)}
          >
            {label}
          </a>
        );
      })}
    </nav>
  );
}

function ConnectionBadge({ state }: { state: ConnectionState }) {
  const [, tick] = useState(0);
  useEffect(() => {
    if (state.status !== "reconnecting") return;
    const t = setInterval(() => tick((n) => n + 1), 500);
    return () => clearInterval(t);
  }, [state]);
  const text =
    state.status === "open"
      ? "Live"
      : state.status === "connecting"
        ? state.attempt ? `Reconnecting (attempt ${state.attempt})…` : "Connecting…"
        : `Disconnected — retrying in ${Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000))} s`;
  return (
    <span className={`conn conn-${state.status}`} role="status" data-testid="connection" data-status={state.status}>
      <span className="dot" aria-hidden="true" /> {text}
    </span>
  );
}

/**
 * The dashboard; `account` (who is signed in, and signing out) goes in the header. `admin`:
 * whether the caller may manage alert channels (the panel asks the API only then).
 * `canEditTopics`: whether the caller may create, edit and delete topics (editors, admins, an
 * open server); others see the topics and their share of voice only.
 */
export function App({ account, admin, canEditTopics }: { account?: ReactNode; admin: boolean; canEditTopics: boolean }) {
  const [filters, setFilters] = useFilters();
  const { view, search, setView, setSearch } = useSearchState();
  const [theme, toggleTheme] = useTheme();
  const queryClient = useQueryClient();
  const wsFilter = useMemo(() => liveFilter(filters), [filters]);
  const period = filters.since && filters.until ? { since: filters.since, until: filters.until } : undefined;
  // A fixed period is read from the API alone: the live snapshot is of the rolling windows.
  const filtered = hasLabelFilters(filters) || period !== undefined;
  const [live, dispatch, conn] = useLive(wsFilter);
  const data = usePanelData(filters, wsFilter, admin);
  const { overall, series, trending: trendingQ, posts: postsQ, alerts: alertsQ, channelList: channelListQ } = data;

  useEffect(() => {
    if (postsQ.data) dispatch({ type: "seedPosts", posts: postsQ.data.items });
  }, [postsQ.data]);
  useEffect(() => {
    if (alertsQ.data) dispatch({ type: "seedAlerts", alerts: alertsQ.data.items });
  }, [alertsQ.data]);

  // Without filters the live snapshot (2/s) is fresher than polling; it reads the same rollups.
  let overallStats: Stats | undefined = overall.data?.stats;
  let source = period ? "the period" : filtered ? "filtered posts" : "polled";
  const snap = live.snapshot;
  if (!filtered && snap && overall.data && Date.parse(snap.at) > Date.parse(overall.data.to)) {
    overallStats = snap.overall[filters.window];
    source = "live";
  }

  const rates = useLiveRates(live.postCount);

  const [acking, setAcking] = useState<Set<number>>(new Set());
  const [ackError, setAckError] = useState<string>();
  const acknowledge = useCallback(async (id: number) => {
    setAcking((s) => new Set(s).add(id));
    try {
      const alert = await api.acknowledge(id);
      dispatch({ type: "alertChanged", alert });
      setAckError(undefined);
    } catch (e) {
      setAckError(`Could not acknowledge: ${(e as Error).message}`);
      queryClient.invalidateQueries({ queryKey: ["alerts"] });
    } finally {
      setAcking((s) => {
        const n = new Set(s);
        n.delete(id);
        return n;
      });
    }
  }, [queryClient]);

  const testChannel = useCallback(
    async (id: number) => {
      const outcome = await api.testChannel(id);
      queryClient.invalidateQueries({ queryKey: ["alert-channels"] });
      return outcome;
    },
    [queryClient],
  );

  const pick = useCallback((dimension: FilterKey, key: string | undefined) => setFilters({ ...filters, [dimension]: key }), [filters, setFilters]);
  const pickTopic = useCallback((id: string | undefined) => pick("topic", id), [pick]);
  const topicList = data.topics.data?.items;
  const names = useMemo(() => topicNames(topicList), [topicList]);
  const options = {
    product: data.products.data?.items.map((i) => i.key) ?? [],
    channel: data.channels.data?.items.map((i) => i.key) ?? [],
    country: data.geo.data?.countries.map((i) => i.key) ?? [],
    city: data.geo.data?.cities.map((i) => i.key) ?? [],
  };
  const scope = trendScope(filters);
  const scopeKey = scope.dimension === "topic" ? (names.get(Number(scope.key)) ?? `#${scope.key}`) : scope.key;
  const scopeText = scope.dimension === "overall" ? "whole stream" : `${scope.dimension} = ${scopeKey}${scope.partial ? " (the trend follows one filter)" : ""}`;
  const alerts = useMemo(() => live.alerts.filter((a) => alertInView(filters, a.dimension, a.key)), [live.alerts, filters]);
  useEffect(() => {
    if (trendingQ.data) dispatch({ type: "viralListed", ids: trendingQ.data.items.map((v) => v.post_id), at: trendingQ.dataUpdatedAt });
  }, [trendingQ.data, trendingQ.dataUpdatedAt]);
  // The listing as last fetched, with the live updates that came since merged in.
  const trendingItems = trendingQ.data?.items;
  // A listing fetched before a deletion may still hold the post: the deletion wins.
  const viral = useMemo(
    () => (trendingItems ? mergeViral(trendingItems.filter(notDeleted(live.deleted)), live.viral) : undefined),
    [trendingItems, live.viral, live.deleted],
  );
  const postTexts = useMemo(() => new Map([...live.held, ...live.posts].map((p) => [p.id, p.text])), [live.posts, live.held]);
  const apiDown = overall.isError && !overall.data;
  const show = (id: PanelId) => shows(filters, id);

  return (
    <div className="app">
      <header className="top">
        <h1>
          <span className="logo" aria-hidden="true">〰</span> Pulse
        </h1>
        <ViewLinks view={view} search={search} onView={setView} />
        <ConnectionBadge state={conn} />
        {apiDown && <span className="error small" role="alert">API unreachable: {(overall.error as Error).message}</span>}
        {account}
        <button type="button" className="btn" onClick={toggleTheme} aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}>
          {theme === "dark" ? "☀ Light" : "☾ Dark"}
        </button>
      </header>
      <FilterBar filters={filters} options={options} topics={topicList} onChange={setFilters} showWindow={view === "dashboard" && !period} />
      {view === "dashboard" && <ViewsBar filters={filters} onFilters={setFilters} />}
      {view === "search" ? (
        <Suspense fallback={<Empty>Loading the search…</Empty>}>
          <SearchView
            filters={filters}
            onFilters={setFilters}
            search={search}
            onSearch={setSearch}
            onView={setView}
            topicNames={names}
            stories={data.stories.data?.items}
            canEdit={canEditTopics}
          />
        </Suspense>
      ) : (
        <main className="grid">
          {show("overall") && (
            <OverallPanel stats={overallStats} source={source} />
          )}
          {show("topics") && (
            <TopicsPanel
              metrics={data.topicMetrics.data}
              topics={topicList}
              error={data.topicMetrics.isError ? (data.topicMetrics.error as Error).message : data.topics.isError ? (data.topics.error as Error).message : undefined}
              active={filters.topic}
              window={period ? "the period" : filters.window}
              canEdit={canEditTopics}
              onPick={pickTopic}
            />
          )}
          {show("review") && canEditTopics && <ReviewPanel topics={topicList} topic={filters.topic} />}
          {show("trend") && (
            <TrendPanel
              series={series.data}
              scope={scopeText}
              period={period}
              onRender={countChartRender}
            />
          )}
          {show("emotions") && (
            <EmotionsPanel stats={overallStats} />
          )}
          {show("platforms") && (
            <ComparePanel id="platforms" title="By platform">
              <RankedList dimension="platform" items={data.platforms.data?.items} active={filters.platform} onPick={pick} />
            </ComparePanel>
          )}
          {show("products") && (
            <ComparePanel id="products" title="Share of voice by product">
              <RankedList dimension="product" items={data.products.data?.items} active={filters.product} onPick={pick} />
            </ComparePanel>
          )}
          {show("channels") && (
            <ComparePanel id="channels" title="By channel">
              <RankedList dimension="channel" items={data.channels.data?.items} active={filters.channel} onPick={pick} />
            </ComparePanel>
          )}
          {show("languages") && (
            <LanguagesPanel data={data.languages.data} />
          )}
          {show("countries") && (
            <ComparePanel id="countries" title="By country">
              <RankedList dimension="country" items={data.geo.data?.countries} active={filters.country} onPick={pick} />
            </ComparePanel>
          )}
          {show("cities") && (
            <ComparePanel id="cities" title="By city">
              <RankedList dimension="city" items={data.geo.data?.cities} active={filters.city} onPick={pick} />
            </ComparePanel>
          )}
          {show("stream") && (
            <StreamPanel
              posts={live.paused ? live.posts : live.posts}
              paused={live.paused}
              missed={live.missed}
              topicNames={names}
              onToggle={() => dispatch({ type: live.paused ? "resume" : "pause" })}
            />
          )}
          {show("alerts") && (
            <AlertsPanel alerts={alerts} onAck={acknowledge} pending={acking} error={ackError} />
          )}
          {show("viral") && (
            <ViralPanel
              viral={viral}
              texts={postTexts}
              error={trendingQ.isError ? (trendingQ.error as Error).message : undefined}
              terms={data.terms.data}
            />
          )}
          {show("stories") && (
            <StoriesPanel
              stories={data.stories.data?.items}
              error={data.stories.isError ? (data.stories.error as Error).message : undefined}
            />
          )}
          {show("forecast") && (
            <ForecastPanel />
          )}
          {show("digests") && (
            <DigestsPanel topics={topicList} channels={channelListQ.data?.items} topic={filters.topic} canEdit={canEditTopics} />
          )}
          {show("pipeline") && (
            <PipelinePanel pipeline={data.pipeline.data} liveRate={rates.posts} dropped={live.dropped} fps={rates.fps} />
          )}
          {show("alert-channels") && (
            <ChannelsPanel
              list={channelListQ.data}
              forbidden={data.channelsForbidden}
              error={channelListQ.error ? (channelListQ.error as Error).message : undefined}
              onTest={testChannel}
            />
          )}
        </main>
      )}
      <footer className="muted small">
        {view === "search"
          ? "Searches read every stored post through Pulse's REST API; counts are exact, from PostgreSQL."
          : `Figures come from Pulse's REST API and live WebSocket; ${period ? "the period shown" : `window: ${filters.window}`}. Numbers are exact counts from PostgreSQL.`}
      </footer>
    </div>
  );
}
