// Numbers for people: 1.2k posts, 34%, +0.12 sentiment. Every figure on screen goes through
// one of these, so the end-to-end test can format the REST API's numbers the same way.

const compactFmt = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const intFmt = new Intl.NumberFormat("en");

/** 999 → "999", 1234 → "1.2k", 2_500_000 → "2.5M". */
export function compact(n: number): string {
  if (!Number.isFinite(n)) return "–";
  if (Math.abs(n) < 1000) return intFmt.format(Math.round(n));
  return compactFmt.format(n).replace("K", "k");
}

/** A share in 0..1 as a whole percentage: 0.344 → "34%"; under 1% but not zero → "<1%". */
export function percent(share: number): string {
  if (!Number.isFinite(share)) return "–";
  if (share > 0 && share < 0.005) return "<1%";
  return `${Math.round(share * 100)}%`;
}

/** A sentiment score in -1..1 with its sign: 0.123 → "+0.12", -0.5 → "−0.50". */
export function signed(score: number, digits = 2): string {
  if (!Number.isFinite(score)) return "–";
  const fixed = Math.abs(score).toFixed(digits);
  if (Number(fixed) === 0) return (0).toFixed(digits);
  return `${score > 0 ? "+" : "−"}${fixed}`;
}

/** A rate per second: 2043.4 → "2k/s", 3 → "3/s", 0.25 → "0.3/s". */
export function rate(perSec: number): string {
  if (!Number.isFinite(perSec)) return "–";
  if (perSec > 0 && perSec < 10) return `${perSec.toFixed(1).replace(/\.0$/, "")}/s`;
  return `${compact(perSec)}/s`;
}

/** How long ago `iso` was, relative to `now` (ms): "3s ago", "5m ago", "2h ago", "3d ago". */
export function ago(iso: string, now: number = Date.now()): string {
  const secs = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (secs < 60) return `${secs}s ago`;
  const mins = Math.floor(secs / 60);
  if (mins < 60) return `${mins}m ago`;
  const hours = Math.floor(mins / 60);
  if (hours < 48) return `${hours}h ago`;
  return `${Math.floor(hours / 24)}d ago`;
}

/** A clock time for chart axes: "14:05". */
export function clock(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** Bytes for people: 1536 → "1.5 kB". */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** The word for a sentiment mean, with the analyzer's thresholds. */
export function mood(mean: number): "negative" | "neutral" | "positive" {
  if (mean <= -0.08) return "negative";
  if (mean >= 0.4) return "positive";
  return "neutral";
}

/** A virality score in 0..100 with one decimal: 61.24 → "61.2". */
export function score(points: number): string {
  if (!Number.isFinite(points)) return "–";
  return points.toFixed(1);
}

/** A rate per minute: 12.44 → "12.4/min", 0 → "0/min", 2500 → "2.5k/min". */
export function perMinute(perMin: number): string {
  if (!Number.isFinite(perMin)) return "–";
  if (Math.abs(perMin) < 100) return `${perMin.toFixed(1).replace(/\.0$/, "")}/min`;
  return `${compact(perMin)}/min`;
}

/** What an ingest key may send, in a few words: null → "anything". */
export function scopeText(
  scope: { platforms: string[]; products: string[]; id_prefixes: string[]; unreadable?: boolean } | null,
): string {
  if (!scope) return "anything";
  if (scope.unreadable) return "nothing (its scope was written by a newer version)";
  const parts = [
    scope.platforms.length > 0 && scope.platforms.join(", "),
    scope.products.length > 0 && `products ${scope.products.join(", ")}`,
    scope.id_prefixes.length > 0 && `ids ${scope.id_prefixes.map((p) => `${p}…`).join(", ")}`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join("; ") : "anything";
}
