import { useState, type FormEvent } from "react";
import { api, type Draft } from "../api/client";
import { platforms } from "../api/constants";
import type { ForecastResponse } from "../api/schemas";
import { compact, percent, signed } from "../lib/format";
import { Panel } from "./Panel";

/** Drivers that moved a forecast by less than this factor either way are left unlisted. */
const NOTABLE = 0.02;

/**
 * "Forecast a post": how far a draft is expected to travel before anyone shares it, from its
 * author's cascades in the store, its audience and its text. Nothing is stored.
 */
export function ForecastPanel() {
  const [text, setText] = useState("");
  const [platform, setPlatform] = useState("twitter");
  const [author, setAuthor] = useState("");
  const [followers, setFollowers] = useState("");
  const [lang, setLang] = useState("");
  const [result, setResult] = useState<ForecastResponse | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [pending, setPending] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setPending(true);
    setError(undefined);
    const draft: Draft = { text, platform, author: { id: author.trim() } };
    const count = Number(followers);
    if (followers.trim() !== "" && Number.isFinite(count) && count >= 0) draft.author.followers = Math.round(count);
    if (lang.trim() !== "") draft.lang = lang.trim();
    try {
      setResult(await api.forecast(draft));
    } catch (err) {
      setResult(undefined);
      setError((err as Error).message);
    } finally {
      setPending(false);
    }
  };

  const f = result?.forecasts[0];
  return (
    <Panel id="forecast" title="Forecast a post">
      <form className="forecast-form" onSubmit={submit} aria-label="Forecast a post">
        <textarea
          aria-label="Post text"
          data-testid="forecast-text"
          rows={3}
          maxLength={5000}
          placeholder="What the post will say"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <div className="forecast-row">
          <select aria-label="Platform" data-testid="forecast-platform" value={platform} onChange={(e) => setPlatform(e.target.value)}>
            {platforms.map((p) => (
              <option key={p} value={p}>{p}</option>
            ))}
          </select>
          <input
            aria-label="Author id"
            data-testid="forecast-author-id"
            placeholder="author id"
            value={author}
            onChange={(e) => setAuthor(e.target.value)}
          />
          <input
            aria-label="Followers"
            data-testid="forecast-followers"
            inputMode="numeric"
            placeholder="followers"
            value={followers}
            onChange={(e) => setFollowers(e.target.value)}
          />
          <input
            aria-label="Language"
            data-testid="forecast-lang"
            maxLength={16}
            placeholder="lang (auto)"
            title="Language tag such as de or pt-BR; detected from the text when empty"
            value={lang}
            onChange={(e) => setLang(e.target.value)}
          />
          <button type="submit" data-testid="forecast-submit" disabled={pending || !text.trim() || !author.trim()}>
            {pending ? "…" : "Forecast"}
          </button>
        </div>
      </form>
      {error && (
        <p className="error small" role="alert" data-testid="forecast-error">
          {error}
        </p>
      )}
      {f && result && (
        <div
          className="forecast"
          data-testid="forecast-result"
          data-expected={f.expected_shares}
          data-low={f.interval.low}
          data-high={f.interval.high}
          data-probability={f.viral_probability}
          aria-live="polite"
        >
          <p>
            <strong className="forecast-expected" data-testid="forecast-expected">{compact(f.expected_shares)}</strong> shares
            expected within 7 days; {Math.round(f.interval.level * 100)}% between {compact(f.interval.low)} and{" "}
            {compact(f.interval.high)}
          </p>
          <p className="small">
            viral (≥ {compact(f.viral_threshold_shares)} shares): <span data-testid="forecast-viral">{percent(f.viral_probability)}</span> · score{" "}
            {f.score}/100
            {f.percentile !== null
              ? ` · above ${Math.round(f.percentile)}% of ${compact(f.percentile_among)} finished ${platform} cascades`
              : ""}
          </p>
          <p className="small muted" data-testid="forecast-author">
            {f.author.new_author
              ? "New author: no cascade of theirs in the store, so this rests on audience and text, and is less certain."
              : `From ${compact(f.author.cascades)} cascades of this author (typically ${compact(f.author.typical_shares ?? 0)} shares).`}
          </p>
          <ul className="drivers small" aria-label="What moved the forecast">
            {f.drivers
              .filter((d) => Math.abs(Math.log(d.factor)) >= NOTABLE)
              .map((d) => (
                <li key={d.group} data-testid="forecast-driver" data-group={d.group}>
                  {d.group}: ×{d.factor.toFixed(2)}
                  {d.spearman_loss_without !== null && (
                    <span className="muted"> (held out: {signed(d.spearman_loss_without, 3)} Spearman without it)</span>
                  )}
                </li>
              ))}
          </ul>
          <p className="small muted" data-testid="forecast-model">
            {f.lang ? `read as ${f.lang} · ` : ""}model {f.model}
            {f.model !== result.model.id ? ` (refitted on this platform's cascades; shipped: ${result.model.id})` : ""}
          </p>
        </div>
      )}
    </Panel>
  );
}
