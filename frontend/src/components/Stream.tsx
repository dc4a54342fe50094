import { memo, type ReactNode } from "react";
import type { Post } from "../api/schemas";
import { ago, compact, percent, signed } from "../lib/format";
import { Empty, Panel } from "./Panel";

/** The post's topics as chips, by name; a topic deleted since (or not yet listed) has none. */
export function TopicChips({ ids, names }: { ids: number[]; names: Map<number, string> }) {
  return ids.map((id) => {
    const name = names.get(id);
    return name === undefined ? null : (
      <span key={id} className="tag topic-chip" data-testid="post-topic" data-id={id}>
        {name}
      </span>
    );
  });
}

/**
 * Who posted where, its product, channel, topics and place, and when (`dated`: with the date and
 * time on hover, for posts older than the live stream's); `children` go before the time.
 */
export function PostMeta(props: { post: Post; topicNames: Map<number, string>; dated?: boolean; children?: ReactNode }) {
  const { post, topicNames, children } = props;
  const where = [post.geo.city, post.geo.country].filter(Boolean).join(", ");
  return (
    <div className="post-meta small">
      <span className={`plat plat-${post.platform}`}>{post.platform}</span>
      <span className="muted">@{post.author.id} · {compact(post.author.followers)} followers</span>
      {post.product && <span className="tag">{post.product}</span>}
      {post.channel && <span className="tag">{post.channel}</span>}
      <TopicChips ids={post.topics} names={topicNames} />
      {where && <span className="muted">{where}</span>}
      {children}
      <time className="muted" dateTime={post.created_at} title={props.dated ? new Date(post.created_at).toLocaleString() : undefined}>
        {ago(post.created_at)}
      </time>
    </div>
  );
}

/** The post's analysis as badges: sentiment, emotion, and toxicity, hate and churn risk when high. */
export function PostBadges({ analysis: a, children }: { analysis: Post["analysis"]; children?: ReactNode }) {
  return (
    <div className="badges small">
      <span className={`badge ${a.sentiment.label}`} title="Sentiment (VADER compound)" data-testid="post-sentiment">
        {a.sentiment.label} {signed(a.sentiment.score)}
      </span>
      {a.emotion && <span className="badge emo">{a.emotion}</span>}
      {a.toxicity >= 0.15 && (
        <span className="badge warn" title="Toxicity: probability of offensive language" data-testid="toxicity" data-value={a.toxicity}>
          toxic {percent(a.toxicity)}
        </span>
      )}
      {a.hate >= 0.15 && (
        <span className="badge warn" title="Hate speech: probability, a narrower call than toxicity" data-testid="hate" data-value={a.hate}>
          hate {percent(a.hate)}
        </span>
      )}
      {a.churn_risk >= 0.6 && <span className="badge warn" title="Churn risk">churn risk {percent(a.churn_risk)}</span>}
      {children}
    </div>
  );
}

const PostRow = memo(function PostRow({ post, topicNames }: { post: Post; topicNames: Map<number, string> }) {
  return (
    <li className="post" data-testid="post" data-id={post.id}>
      <PostMeta post={post} topicNames={topicNames} />
      <p className="post-text">{post.text}</p>
      <PostBadges analysis={post.analysis} />
    </li>
  );
});

export function StreamPanel(props: {
  posts: Post[];
  paused: boolean;
  missed: number;
  /** Topic names by id, for the chips. */
  topicNames: Map<number, string>;
  onToggle: () => void;
}) {
  return (
    <Panel
      id="stream"
      title="Live posts"
      className="tall"
      aside={
        <button type="button" className="btn" onClick={props.onToggle} aria-pressed={props.paused} data-testid="pause">
          {props.paused ? `Resume${props.missed ? ` (${compact(props.missed)} new)` : ""}` : "Pause"}
        </button>
      }
    >
      {props.posts.length === 0 ? (
        <Empty>No posts yet for these filters. New posts appear here as they are stored.</Empty>
      ) : (
        <ol className="posts" aria-live={props.paused ? "off" : "polite"} aria-relevant="additions" aria-busy="false">
          {props.posts.map((p) => (
            <PostRow key={p.id} post={p} topicNames={props.topicNames} />
          ))}
        </ol>
      )}
    </Panel>
  );
}
