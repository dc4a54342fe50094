import { platforms, windows } from "../api/constants";
import type { Window } from "../api/schemas";
import { filterKeys, type FilterKey, type Filters } from "../lib/filters";

const windowNames: Record<Window, string> = { "1m": "This minute", "5m": "5 minutes", "1h": "1 hour", "24h": "24 hours" };

/** Global filters; options for the label filters come from the keys the API reported. */
export function FilterBar(props: {
  filters: Filters;
  options: Record<Exclude<FilterKey, "platform">, string[]>;
  onChange: (next: Filters) => void;
}) {
  const { filters } = props;
  const set = (key: FilterKey, value: string) => props.onChange({ ...filters, [key]: value || undefined });
  const opts = (key: FilterKey): string[] => {
    const base = key === "platform" ? [...platforms] : props.options[key];
    const v = filters[key];
    return v && !base.includes(v) ? [v, ...base] : base;
  };
  const active = filterKeys.some((k) => filters[k]);
  return (
    <form className="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
      {filterKeys.map((key) => (
        <label key={key}>
          <span>{key}</span>
          <select value={filters[key] ?? ""} onChange={(e) => set(key, e.target.value)} data-testid={`filter-${key}`}>
            <option value="">all</option>
            {opts(key).map((o) => (
              <option key={o} value={o}>{o}</option>
            ))}
          </select>
        </label>
      ))}
      <label>
        <span>window</span>
        <select
          value={filters.window}
          onChange={(e) => props.onChange({ ...filters, window: e.target.value as Window })}
          data-testid="filter-window"
        >
          {windows.map((w) => (
            <option key={w} value={w}>{windowNames[w]}</option>
          ))}
        </select>
      </label>
      <button type="button" className="btn" disabled={!active} onClick={() => props.onChange({ window: filters.window })}>
        Clear filters
      </button>
    </form>
  );
}
