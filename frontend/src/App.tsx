import { useCallback, useEffect, useMemo, useReducer, useRef, useState, type ReactNode } from "react";
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { session } from "./api/auth";
import { api, ApiError } from "./api/client";
import type { Stats, WsFilter } from "./api/schemas";
import { alertInView, filtersToSearch, hasLabelFilters, labelFilters, parseFilters, trendScope, type FilterKey, type Filters } from "./lib/filters";
import { compact, percent, perMinute, rate, score, signed } from "./lib/format";
import { LiveSocket, socketUrl, type ConnectionState } from "./lib/socket";
import { useTheme } from "./lib/theme";
import { initialLive, liveReducer, MAX_VIRAL, mergeViral, notDeleted } from "./state/live";
import { FilterBar } from "./components/FilterBar";
import { OverallPanel } from "./components/Overall";
import { TrendPanel } from "./components/Trend";
import { EmotionsPanel } from "./components/Emotions";
import { LanguagesPanel } from "./components/Languages";
import { ComparePanel, RankedList } from "./components/Ranked";
import { StreamPanel } from "./components/Stream";
import { AlertsPanel } from "./components/Alerts";
import { ViralPanel } from "./components/Viral";
import { PipelinePanel } from "./components/Pipeline";
import { ChannelsPanel } from "./components/Channels";

/**
 * What the browser tests read (`window.__pulse`): live flushes and chart renders for the
 * benchmark, and the page's own formatters, so the end-to-end test formats the REST API's
 * numbers exactly as the panels do.
 */
export interface PulseCounters {
  batches: number;
  posts: number;
  chartRenders: number;
  lastChartRender: number;
  format: {
    compact: typeof compact;
    percent: typeof percent;
    signed: typeof signed;
    rate: typeof rate;
    score: typeof score;
    perMinute: typeof perMinute;
  };
}
declare global {
  interface Window {
    __pulse?: PulseCounters;
  }
}
const counters: PulseCounters = { batches: 0, posts: 0, chartRenders: 0, lastChartRender: 0, format: { compact, percent, signed, rate, score, perMinute } };
window.__pulse = counters;

function countChartRender(): void {
  counters.chartRenders++;
  counters.lastChartRender = performance.now();
}

function useFilters(): [Filters, (f: Filters) => void] {
  const [filters, setFilters] = useState(() => parseFilters(window.location.search));
  useEffect(() => {
    const onPop = () => setFilters(parseFilters(window.location.search));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const update = useCallback((next: Filters) => {
    const search = filtersToSearch(next);
    window.history.pushState(null, "", search ? `?${search}` : window.location.pathname);
    setFilters(next);
  }, []);
  return [filters, update];
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
 */
export function App({ account, admin }: { account?: ReactNode; admin: boolean }) {
  const [filters, setFilters] = useFilters();
  const [theme, toggleTheme] = useTheme();
  const [live, dispatch] = useReducer(liveReducer, initialLive);
  const [conn, setConn] = useState<ConnectionState>({ status: "connecting", attempt: 0 });
  const socketRef = useRef<LiveSocket | null>(null);
  const queryClient = useQueryClient();
  const wsFilter = useMemo(() => labelFilters(filters) as WsFilter, [filters]);
  const filtered = hasLabelFilters(filters);

  // The socket lives as long as the page; filter changes resubscribe it.
  useEffect(() => {
    const s = new LiveSocket(
      async () => socketUrl(window.location, await session.token()),
      ["posts", "metrics", "alerts", "virality"],
      (batch) => {
        counters.batches++;
        counters.posts += batch.postCount;
        dispatch({ type: "batch", batch });
        if (batch.dropped) queryClient.invalidateQueries({ queryKey: ["posts"] });
      },
      (state) => {
        setConn(state);
        // Messages are not kept for disconnected clients: catch up through REST (the
        // server's authentication mode is not data to catch up on).
        if (state.status === "open") queryClient.invalidateQueries({ predicate: (q) => q.queryKey[0] !== "auth-status" });
      },
      () => session.renew(),
    );
    socketRef.current = s;
    s.start(wsFilter);
    return () => s.stop();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const firstFilter = useRef(true);
  useEffect(() => {
    if (firstFilter.current) {
      firstFilter.current = false;
      return;
    }
    dispatch({ type: "filtersChanged" });
    socketRef.current?.setFilter(wsFilter);
  }, [wsFilter]);

  const q = { placeholderData: keepPreviousData, retry: 1 } as const;
  const overall = useQuery({ queryKey: ["overall", filters], queryFn: () => api.overall(filters), refetchInterval: 2000, ...q });
  const series = useQuery({ queryKey: ["timeseries", trendScope(filters)], queryFn: () => api.timeseries(filters), refetchInterval: 1000, ...q });
  const platformsQ = useQuery({ queryKey: ["platforms", filters], queryFn: () => api.platforms(filters), refetchInterval: 5000, ...q });
  const productsQ = useQuery({ queryKey: ["products", filters], queryFn: () => api.products(filters), refetchInterval: 5000, ...q });
  const channelsQ = useQuery({ queryKey: ["channels", filters], queryFn: () => api.channels(filters), refetchInterval: 5000, ...q });
  const languagesQ = useQuery({ queryKey: ["languages", filters], queryFn: () => api.languages(filters), refetchInterval: 5000, ...q });
  const geoQ = useQuery({ queryKey: ["geo", filters], queryFn: () => api.geo(filters), refetchInterval: 5000, ...q });
  const termsQ = useQuery({ queryKey: ["terms", filters.window], queryFn: () => api.terms(filters), refetchInterval: 10_000, ...q });
  const trendingQ = useQuery({ queryKey: ["trending-posts", wsFilter], queryFn: () => api.trendingPosts(filters, MAX_VIRAL), refetchInterval: 5000, ...q });
  const pipelineQ = useQuery({ queryKey: ["pipeline"], queryFn: api.pipeline, refetchInterval: 2000, ...q });
  const postsQ = useQuery({ queryKey: ["posts", wsFilter], queryFn: () => api.posts(filters), staleTime: Infinity });
  const alertsQ = useQuery({ queryKey: ["alerts"], queryFn: api.alerts, refetchInterval: 30_000 });
  // Admins only; a 403 (a role changed under the session) stops the polling too.
  const channelListQ = useQuery({
    queryKey: ["alert-channels"],
    queryFn: api.channelList,
    enabled: admin,
    refetchInterval: (query) => (query.state.error instanceof ApiError && query.state.error.status === 403 ? false : 15_000),
    retry: false,
  });
  const channelsForbidden = !admin || (channelListQ.error instanceof ApiError && channelListQ.error.status === 403);

  useEffect(() => {
    if (postsQ.data) dispatch({ type: "seedPosts", posts: postsQ.data.items });
  }, [postsQ.data]);
  useEffect(() => {
    if (alertsQ.data) dispatch({ type: "seedAlerts", alerts: alertsQ.data.items });
  }, [alertsQ.data]);

  // Without filters the live snapshot (2/s) is fresher than polling; it reads the same rollups.
  let overallStats: Stats | undefined = overall.data?.stats;
  let source = filtered ? "filtered posts" : "polled";
  const snap = live.snapshot;
  if (!filtered && snap && overall.data && Date.parse(snap.at) > Date.parse(overall.data.to)) {
    overallStats = snap.overall[filters.window];
    source = "live";
  }

  // Live rate and render rate over the last few seconds, for the health panel.
  const [rates, setRates] = useState({ posts: 0, fps: 0 });
  const last = useRef({ t: performance.now(), posts: 0, batches: 0 });
  const postCountRef = useRef(0);
  postCountRef.current = live.postCount;
  useEffect(() => {
    const t = setInterval(() => {
      const now = performance.now();
      const dt = (now - last.current.t) / 1000;
      setRates({
        posts: (postCountRef.current - last.current.posts) / dt,
        fps: (counters.batches - last.current.batches) / dt,
      });
      last.current = { t: now, posts: postCountRef.current, batches: counters.batches };
    }, 2000);
    return () => clearInterval(t);
  }, []);

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
  const options = {
    product: productsQ.data?.items.map((i) => i.key) ?? [],
    channel: channelsQ.data?.items.map((i) => i.key) ?? [],
    country: geoQ.data?.countries.map((i) => i.key) ?? [],
    city: geoQ.data?.cities.map((i) => i.key) ?? [],
  };
  const scope = trendScope(filters);
  const scopeText = scope.dimension === "overall" ? "whole stream" : `${scope.dimension} = ${scope.key}${scope.partial ? " (the trend follows one filter)" : ""}`;
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

  return (
    <div className="app">
      <header className="top">
        <h1>
          <span className="logo" aria-hidden="true">〰</span> Pulse
        </h1>
        <ConnectionBadge state={conn} />
        {apiDown && <span className="error small" role="alert">API unreachable: {(overall.error as Error).message}</span>}
        {account}
        <button type="button" className="btn" onClick={toggleTheme} aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}>
          {theme === "dark" ? "☀ Light" : "☾ Dark"}
        </button>
      </header>
      <FilterBar filters={filters} options={options} onChange={setFilters} />
      <main className="grid">
        <OverallPanel stats={overallStats} source={source} />
        <TrendPanel
          series={series.data}
          scope={scopeText}
          onRender={countChartRender}
        />
        <EmotionsPanel stats={overallStats} />
        <ComparePanel id="platforms" title="By platform">
          <RankedList dimension="platform" items={platformsQ.data?.items} active={filters.platform} onPick={pick} />
        </ComparePanel>
        <ComparePanel id="products" title="Share of voice by product">
          <RankedList dimension="product" items={productsQ.data?.items} active={filters.product} onPick={pick} />
        </ComparePanel>
        <ComparePanel id="channels" title="By channel">
          <RankedList dimension="channel" items={channelsQ.data?.items} active={filters.channel} onPick={pick} />
        </ComparePanel>
        <LanguagesPanel data={languagesQ.data} />
        <ComparePanel id="countries" title="By country">
          <RankedList dimension="country" items={geoQ.data?.countries} active={filters.country} onPick={pick} />
        </ComparePanel>
        <ComparePanel id="cities" title="By city">
          <RankedList dimension="city" items={geoQ.data?.cities} active={filters.city} onPick={pick} />
        </ComparePanel>
        <StreamPanel
          posts={live.paused ? live.posts : live.posts}
          paused={live.paused}
          missed={live.missed}
          onToggle={() => dispatch({ type: live.paused ? "resume" : "pause" })}
        />
        <AlertsPanel alerts={alerts} onAck={acknowledge} pending={acking} error={ackError} />
        <ViralPanel
          viral={viral}
          texts={postTexts}
          error={trendingQ.isError ? (trendingQ.error as Error).message : undefined}
          terms={termsQ.data}
        />
        <PipelinePanel pipeline={pipelineQ.data} liveRate={rates.posts} dropped={live.dropped} fps={rates.fps} />
        <ChannelsPanel
          list={channelListQ.data}
          forbidden={channelsForbidden}
          error={channelListQ.error ? (channelListQ.error as Error).message : undefined}
          onTest={testChannel}
        />
      </main>
      <footer className="muted small">
        Figures come from Pulse's REST API and live WebSocket; window: {filters.window}. Numbers are exact counts from
        PostgreSQL.
      </footer>
    </div>
  );
}
