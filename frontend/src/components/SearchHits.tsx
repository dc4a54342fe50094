import { memo, useEffect, useMemo, useRef, useState } from "react";
import type { SearchHit, Story } from "../api/schemas";
import { highlightSegments } from "../lib/searchResults";
import { PostBadges, PostMeta } from "./Stream";

/**
 * A post's text with the query's words marked: the API's spans are code point offsets, cut
 * with `Array.from` (never by UTF-16 index) and rendered as text in `<mark>`s, never as HTML.
 */
export function HighlightedText({ text, highlights }: { text: string; highlights: readonly (readonly number[])[] }) {
  const segments = useMemo(() => highlightSegments(text, highlights), [text, highlights]);
  return segments.map((s, i) => (s.hit ? <mark key={i}>{s.text}</mark> : s.text));
}

/** Only links to web pages are offered: a post's `url` is what its producer sent. */
const webLink = (url: string | null) => (url && /^https?:\/\//i.test(url) ? url : undefined);

/** One hit: the post as the live stream shows it, its words marked, with its language and story. */
export const SearchHitRow = memo(function SearchHitRow(props: {
  hit: SearchHit;
  topicNames: Map<number, string>;
  stories: Map<number, Story>;
}) {
  const { post, highlights, score } = props.hit;
  const story = post.story_id === null ? undefined : props.stories.get(post.story_id);
  const link = webLink(post.url);
  return (
    <li className="post hit" data-testid="search-hit" data-id={post.id} data-marks={highlights.length}>
      <PostMeta post={post} topicNames={props.topicNames} dated>
        <span className="tag" title={`Language (${post.analysis.language_support})`} data-testid="hit-lang">
          {post.lang ?? "unknown language"}
        </span>
      </PostMeta>
      <p className="post-text" data-testid="hit-text">
        <HighlightedText text={post.text} highlights={highlights} />
      </p>
      <PostBadges analysis={post.analysis}>
        {post.story_id !== null && (
          <span className="badge story" data-testid="hit-story" data-id={post.story_id} title="The story this post belongs to">
            story: {story?.label ?? `#${post.story_id}`}
          </span>
        )}
        {score !== undefined && (
          <span className="badge muted" title="Relevance: how many of the query's words the post holds, and how close together">
            relevance {score.toFixed(2)}
          </span>
        )}
        {link && (
          <a className="hit-link" href={link} target="_blank" rel="noopener noreferrer">
            open post<span className="sr-only"> (new tab)</span>
          </a>
        )}
      </PostBadges>
    </li>
  );
});

/** Pages loaded one after another without a hit before the view stops and asks. */
const EMPTY_PAGES_BEFORE_ASKING = 3;

/**
 * The end of the results: loads the next page when it scrolls into view (an
 * IntersectionObserver, 600 px early), or when its button is pressed. A page can come back
 * empty and still have a next one (the server checks at most 20,000 posts a page); after a few
 * of those in a row it stops and lets the user decide to keep searching.
 */
export function MoreHits(props: {
  hasMore: boolean;
  loading: boolean;
  /** Pages in a row that brought no hit, the latest last. */
  emptyPages: number;
  checked: number;
  error?: string;
  onMore: () => void;
}) {
  const ref = useRef<HTMLButtonElement | null>(null);
  const [inView, setInView] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof IntersectionObserver === "undefined") return;
    const io = new IntersectionObserver((entries) => setInView(entries.some((e) => e.isIntersecting)), { rootMargin: "600px 0px" });
    io.observe(el);
    return () => io.disconnect();
  }, [props.hasMore]);
  const stalled = props.emptyPages >= EMPTY_PAGES_BEFORE_ASKING;
  const { hasMore, loading, error, onMore } = props;
  useEffect(() => {
    if (inView && hasMore && !loading && !error && !stalled) onMore();
  }, [inView, hasMore, loading, error, stalled, onMore]);
  if (!hasMore) return null;
  return (
    <div className="more-hits">
      {error && (
        <p className="error small" role="alert" data-testid="search-more-error">
          Could not load more: {error}
        </p>
      )}
      {stalled && !loading && (
        <p className="muted small">
          The last {props.emptyPages} pages checked {props.checked.toLocaleString("en")} posts without another match; there may be
          more further back.
        </p>
      )}
      <button ref={ref} type="button" className="btn" data-testid="search-more" disabled={loading} onClick={onMore}>
        {loading ? "Loading…" : error ? "Try again" : stalled ? "Keep searching" : "More results"}
      </button>
    </div>
  );
}
