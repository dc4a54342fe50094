import { useCallback, useEffect, useState } from "react";
import { parseFilters, withFilters, type Filters } from "../lib/filters";

/**
 * The filters in the address bar: set ones are pushed to the history (the URL's other keys,
 * the Search view's, kept), back and forward restore.
 */
export function useFilters(): [Filters, (f: Filters) => void] {
  const [filters, setFilters] = useState(() => parseFilters(window.location.search));
  useEffect(() => {
    const onPop = () => setFilters(parseFilters(window.location.search));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const update = useCallback((next: Filters) => {
    const search = withFilters(window.location.search, next);
    window.history.pushState(null, "", search ? `?${search}` : window.location.pathname);
    setFilters(next);
  }, []);
  return [filters, update];
}
