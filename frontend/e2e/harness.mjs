// What every end-to-end script shares: its command line, checks, polling and screenshots.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * Reads `BASE_URL [--name value …] [--flag …]` (the base URL is the argument that starts
 * with http:// or https://) from the command line, exiting with `usage`
 * when the base URL is missing, and makes the output directory (`--out`, default
 * frontend/e2e-output).
 */
export function cli(usage) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const flag = (name) => args.includes(name);
  const base = args.find((a) => /^https?:\/\//.test(a))?.replace(/\/$/, "");
  if (!base) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  const out = resolve(opt("--out", join(import.meta.dirname, "..", "e2e-output")));
  mkdirSync(out, { recursive: true });
  return { base, opt, flag, out };
}

/** Prints a passed step. */
export const step = (msg) => console.log(`ok: ${msg}`);

/** Fails the run with `msg` unless `cond` holds. */
export function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Polls `fn` until it returns a truthy value or `ms` pass; returns the last value. */
export async function until(ms, fn, every = 200) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last || Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A function that saves a full-page screenshot of `page` as `<out>/<name>.png`. */
export function screenshots(page, out) {
  return async (name) => {
    const path = join(out, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    console.log(`screenshot: ${path}`);
  };
}

/** What shows that each dashboard panel rendered with content, by its `data-panel` name. */
export const PANELS = {
  overall: '[data-testid="negative-share"]',
  topics: '[data-testid="topic-row"], .empty',
  trend: '[data-testid="trend-chart"] svg',
  emotions: '[data-testid="emotion-anger"], .empty',
  platforms: '[data-testid="platform-row"]',
  products: '[data-testid="product-row"]',
  channels: '[data-testid="channel-row"]',
  countries: '[data-testid="country-row"]',
  cities: '[data-testid="city-row"]',
  languages: '[data-testid="language-row"]',
  stream: '[data-testid="post"]',
  alerts: '[data-testid="alerts-firing"]',
  viral: '.empty, [data-testid="viral"]',
  pipeline: '[data-testid="throughput"]',
  forecast: '[data-testid="forecast-submit"]',
};

/** Waits until every panel of `panels` shows its content; fails naming the first that does not. */
export async function waitForPanels(page, panels, timeout) {
  for (const [panel, sel] of Object.entries(panels)) {
    await page.waitForSelector(`[data-panel="${panel}"] :is(${sel})`, { timeout }).catch(() => {
      throw new Error(`panel ${panel} did not render (${sel})`);
    });
  }
}
