import { memo } from "react";
import type { Story } from "../api/schemas";
import { ago, compact } from "../lib/format";
import { Empty, Panel } from "./Panel";

/** What the posts are about: the stories growing fastest, each with its words and size. */
export const StoriesPanel = memo(function StoriesPanel(props: { stories: Story[] | undefined; error?: string }) {
  return (
    <Panel id="stories" title="Stories">
      {!props.stories ? (
        <Empty>{props.error ? `Could not load stories: ${props.error}` : "Loading…"}</Empty>
      ) : props.stories.length === 0 ? (
        <Empty>
          No story yet. When a few posts say alike things close together, they become a story here, named by its words,
          and grow as more posts join.
        </Empty>
      ) : (
        <ol className="stories" aria-label="Stories, fastest-growing first">
          {props.stories.map((s) => (
            <li key={s.id} className="story" data-testid="story" data-id={s.id} data-size={s.size} data-status={s.status}>
              <div className="story-head">
                <strong data-testid="story-label">{s.label}</strong>{" "}
                <span className="small" data-testid="story-size" title="Posts in the story">
                  {compact(s.size)} {s.size === 1 ? "post" : "posts"}
                </span>{" "}
                <span className="small muted" title="Posts in the hour before its latest post">
                  +{compact(s.recent)} last hour
                </span>
                {s.status !== "live" && <span className="badge small">{s.status}</span>}
              </div>
              <div className="small muted">
                {s.terms.slice(3, 8).map((t) => (
                  <span key={t} className="tag">{t}</span>
                ))}{" "}
                born {ago(s.born_at)} · latest {ago(s.last_at)}
              </div>
            </li>
          ))}
        </ol>
      )}
    </Panel>
  );
});
