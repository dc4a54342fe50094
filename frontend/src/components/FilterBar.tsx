import { platforms, windows } from "../api/constants";
import type { Topic, Window } from "../api/schemas";
import { filterKeys, type FilterKey, type Filters } from "../lib/filters";

const windowNames: Record<Window, string> = { "1m": "This minute", "5m": "5 minutes", "1h": "1 hour", "24h": "24 hours" };

/** The label filters other than the topic, whose options are names standing for ids. */
const labelKeys = filterKeys.filter((k): k is Exclude<FilterKey, "topic"> => k !== "topic");

/** The topic selector: live topics by name, the value their id. */
function TopicSelect(props: { value: string | undefined; topics: Topic[] | undefined; onChange: (id: string | undefined) => void }) {
  const { value, topics = [] } = props;
  // A topic in the URL that the list does not hold (still loading, or deleted) stays selectable.
  const unknown = value !== undefined && !topics.some((t) => String(t.id) === value);
  return (
    <label>
      <span>topic</span>
      <select value={value ?? ""} onChange={(e) => props.onChange(e.target.value || undefined)} data-testid="filter-topic">
        <option value="">all</option>
        {unknown && <option value={value}>topic #{value}</option>}
        {topics.map((t) => (
          <option key={t.id} value={String(t.id)}>
            {t.name}
            {t.status === "paused" ? " (paused)" : ""}
          </option>
        ))}
      </select>
    </label>
  );
}

/**
 * Global filters; options for the label filters come from the keys the API reported.
 * `showWindow`: false where the window does not apply (the Search view has its own range).
 */
export function FilterBar(props: {
  filters: Filters;
  options: Record<Exclude<FilterKey, "platform" | "topic">, string[]>;
  topics: Topic[] | undefined;
  onChange: (next: Filters) => void;
  showWindow?: boolean;
}) {
  const { filters } = props;
  const set = (key: FilterKey, value: string | undefined) => props.onChange({ ...filters, [key]: value || undefined });
  const opts = (key: Exclude<FilterKey, "topic">): string[] => {
    const base = key === "platform" ? [...platforms] : props.options[key];
    const v = filters[key];
    return v && !base.includes(v) ? [v, ...base] : base;
  };
  const active = filterKeys.some((k) => filters[k]);
  return (
    <form className="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
      <TopicSelect value={filters.topic} topics={props.topics} onChange={(id) => set("topic", id)} />
      {labelKeys.map((key) => (
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
      {props.showWindow !== false && (
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
      )}
      <button type="button" className="btn" disabled={!active} onClick={() => props.onChange({ window: filters.window })}>
        Clear filters
      </button>
    </form>
  );
}
