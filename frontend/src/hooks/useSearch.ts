import { useInfiniteQuery } from "@tanstack/react-query";
import { api, ApiError } from "../api/client";
import type { SearchPage } from "../api/schemas";
import type { SearchFilters, SearchOrder } from "../lib/search";

/** A search as it runs: its filters (its `from` fixed when it started) and order. */
export interface SearchRun {
  filters: SearchFilters;
  order: SearchOrder;
  /** When it started: a search run again is a new run, with fresh results. */
  at: number;
}

/** A page, and on the first, why the facets are missing when the server would not count them. */
export type RunPage = SearchPage & { facetsRefused?: string };

/**
 * The first page asks for the facets too; a search too broad to count them (`query_too_broad`)
 * still shows its hits, with the refusal in place of the facets.
 */
export async function firstPage(run: SearchRun, signal?: AbortSignal, search = api.search): Promise<RunPage> {
  try {
    return await search(run.filters, { order: run.order, facets: true }, signal);
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== "query_too_broad") throw e;
    const page = await search(run.filters, { order: run.order }, signal);
    return { ...page, facetsRefused: e.message };
  }
}

/**
 * The pages of `run` (none without a query), fetched one after the other with the previous
 * page's cursor. Pages are kept as they came (never refetched in the background), since a
 * later page continues where an earlier one ended.
 */
export function useSearch(run: SearchRun | undefined) {
  return useInfiniteQuery({
    queryKey: ["search", run],
    queryFn: ({ pageParam, signal }): Promise<RunPage> =>
      pageParam === null ? firstPage(run!, signal) : api.search(run!.filters, { order: run!.order, cursor: pageParam }, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    enabled: run !== undefined && run.filters.q.trim() !== "",
    staleTime: Infinity,
    gcTime: 60_000,
    // A refusal stays a refusal; only a busy or unreachable server is asked once more.
    retry: (failures, e) => failures < 1 && !(e instanceof ApiError && e.status < 500),
  });
}
