import { useCallback, useEffect, useState } from "react";
import { parseSearch, withSearch, type SearchState, type View } from "../lib/search";

/**
 * The view the page shows and the Search view's state, in the address bar beside the filters
 * (which `useFilters` keeps): a change is pushed to the history, or replaces the current entry
 * with `replace` (to go with a filter change just pushed); back and forward restore.
 */
export function useSearchState(): {
  view: View;
  search: SearchState;
  setView: (view: View) => void;
  setSearch: (next: SearchState, opts?: { replace?: boolean }) => void;
} {
  const [current, setCurrent] = useState(() => parseSearch(window.location.search));
  useEffect(() => {
    const onPop = () => setCurrent(parseSearch(window.location.search));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const write = useCallback((view: View, search: SearchState, replace = false) => {
    const qs = withSearch(window.location.search, view, search);
    const url = qs ? `?${qs}` : window.location.pathname;
    if (replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
    setCurrent({ view, state: search });
  }, []);
  const setView = useCallback((view: View) => write(view, parseSearch(window.location.search).state), [write]);
  const setSearch = useCallback(
    (next: SearchState, opts?: { replace?: boolean }) => write("search", next, opts?.replace),
    [write],
  );
  return { view: current.view, search: current.state, setView, setSearch };
}
