import { useCallback, useEffect, useState } from "react";
import { filtersToSearch, parseFilters, type Filters } from "../lib/filters";

/** The filters in the address bar: set ones are pushed to the history, back and forward restore. */
export function useFilters(): [Filters, (f: Filters) => void] {
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
