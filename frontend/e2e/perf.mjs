// Dashboard benchmark in headless Chromium, measured with the browser's Performance API:
// first load, bundle size, long tasks, chart and live-render rates, frame rate and JS heap
// over time while Pulse ingests a steady stream.
//
//   pulse serve --demo --demo-rate 2000        # or pulse serve + pulse generate --rate 2000
//   npm run bench -- http://127.0.0.1:8080 [--duration SECONDS] [--out DIR]
//
// Writes DIR/perf.json (default e2e-output/) and prints a summary. It measures; it does not
// fail on thresholds, so run it where the figures mean something (a release build of Pulse).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { launch } from "./browser.mjs";
import { cli } from "./harness.mjs";

const { base, opt, out } = cli("perf.mjs BASE_URL [--duration SECONDS] [--out DIR]");
const duration = Number(opt("--duration", "300"));
const SAMPLE_MS = 5000;

// Bundle: what the browser downloads for a first visit.
const dist = join(import.meta.dirname, "..", "dist");
const bundle = { files: [], bytes: 0, gzip: 0 };
for (const dir of [dist, join(dist, "assets")]) {
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    if (!f.isFile()) continue;
    const data = readFileSync(join(dir, f.name));
    const gz = gzipSync(data).length;
    bundle.files.push({ file: f.name, bytes: data.length, gzip: gz });
    bundle.bytes += data.length;
    bundle.gzip += gz;
  }
}

const browser = await launch();
const page = browser.context.pages()[0] ?? (await browser.context.newPage());
await page.addInitScript(() => {
  // Long tasks and frames from the very start.
  window.__perf = { longTasks: [], frames: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__perf.longTasks.push({ at: e.startTime, ms: e.duration });
  }).observe({ type: "longtask", buffered: true });
  const tick = () => {
    window.__perf.frames++;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
});
const cdp = await browser.context.newCDPSession(page);
await cdp.send("Performance.enable");
const heap = async () => {
  const { metrics } = await cdp.send("Performance.getMetrics");
  return metrics.find((m) => m.name === "JSHeapUsedSize").value;
};

// First load on a cold cache.
const t0 = Date.now();
await page.goto(base + "/");
await page.waitForSelector('[data-testid="posts"]', { timeout: 30_000 });
await page.waitForSelector('[data-testid="trend-chart"] svg', { timeout: 30_000 });
const firstLoad = await page.evaluate(() => {
  const n = performance.getEntriesByType("navigation")[0];
  return {
    response_end_ms: n.responseEnd,
    dom_content_loaded_ms: n.domContentLoadedEventEnd,
    load_ms: n.loadEventEnd,
    first_figures_ms: performance.now(),
    transferred_bytes: performance.getEntriesByType("resource").reduce((s, r) => s + r.transferSize, n.transferSize),
  };
});
firstLoad.wall_ms = Date.now() - t0;
console.log(`first load: ${JSON.stringify(firstLoad)}`);

await cdp.send("HeapProfiler.collectGarbage");
const samples = [];
let prev = await page.evaluate(() => ({ t: performance.now(), frames: window.__perf.frames, chart: window.__pulse.chartRenders, batches: window.__pulse.batches, posts: window.__pulse.posts }));
const end = Date.now() + duration * 1000;
while (Date.now() < end) {
  await page.waitForTimeout(SAMPLE_MS);
  const cur = await page.evaluate(() => ({ t: performance.now(), frames: window.__perf.frames, chart: window.__pulse.chartRenders, batches: window.__pulse.batches, posts: window.__pulse.posts }));
  const dt = (cur.t - prev.t) / 1000;
  const pipeline = await fetch(base + "/api/v1/pipeline").then((r) => r.json()).catch(() => null);
  const s = {
    at_s: Math.round((cur.t - firstLoad.first_figures_ms) / 1000),
    heap_mb: (await heap()) / 1048576,
    fps: (cur.frames - prev.frames) / dt,
    chart_updates_per_s: (cur.chart - prev.chart) / dt,
    live_renders_per_s: (cur.batches - prev.batches) / dt,
    live_posts_per_s: (cur.posts - prev.posts) / dt,
    server_posts_per_s: pipeline?.posts_per_sec ?? null,
  };
  samples.push(s);
  console.log(
    `t=${s.at_s}s heap ${s.heap_mb.toFixed(1)} MB, ${s.fps.toFixed(0)} fps, chart ${s.chart_updates_per_s.toFixed(2)}/s, ` +
      `live renders ${s.live_renders_per_s.toFixed(1)}/s, posts received ${s.live_posts_per_s.toFixed(0)}/s (server ${s.server_posts_per_s?.toFixed(0)}/s)`,
  );
  prev = cur;
}
await cdp.send("HeapProfiler.collectGarbage");
const heapAfterGc = (await heap()) / 1048576;
const longTasks = await page.evaluate(() => window.__perf.longTasks);
const shot = join(out, "perf.png");
await page.screenshot({ path: shot, fullPage: true });
await browser.close();

const steady = samples.slice(1);
const stat = (key) => {
  const v = steady.map((s) => s[key]).filter((x) => x !== null);
  if (!v.length) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { mean, min: Math.min(...v), max: Math.max(...v), sd };
};
const afterLoad = longTasks.filter((t) => t.at > firstLoad.first_figures_ms);
const result = {
  url: base,
  duration_s: duration,
  first_load: firstLoad,
  bundle,
  long_tasks: {
    during_load: longTasks.length - afterLoad.length,
    after_load_over_50ms: afterLoad.length,
    over_200ms: longTasks.filter((t) => t.ms > 200).length,
    max_ms: Math.max(0, ...longTasks.map((t) => t.ms)),
    max_after_load_ms: Math.max(0, ...afterLoad.map((t) => t.ms)),
  },
  fps: stat("fps"),
  chart_updates_per_s: stat("chart_updates_per_s"),
  live_renders_per_s: stat("live_renders_per_s"),
  live_posts_per_s: stat("live_posts_per_s"),
  server_posts_per_s: stat("server_posts_per_s"),
  heap_mb: { first: steady[0]?.heap_mb, last: steady.at(-1)?.heap_mb, max: stat("heap_mb")?.max, after_gc_at_end: heapAfterGc },
  samples,
  screenshot: shot,
};
writeFileSync(join(out, "perf.json"), JSON.stringify(result, null, 1));
const r2 = (x) => (x === null || x === undefined ? "–" : Math.round(x * 100) / 100);
console.log(`
bundle: ${(bundle.bytes / 1024).toFixed(0)} kB (${(bundle.gzip / 1024).toFixed(0)} kB gzip) in ${bundle.files.length} files
first load: DOMContentLoaded ${r2(firstLoad.dom_content_loaded_ms)} ms, load ${r2(firstLoad.load_ms)} ms, first figures ${r2(firstLoad.first_figures_ms)} ms
long tasks: ${result.long_tasks.over_200ms} over 200 ms; longest ${r2(result.long_tasks.max_ms)} ms (after load ${r2(result.long_tasks.max_after_load_ms)} ms); ${afterLoad.length} over 50 ms after load
frames: ${r2(result.fps?.mean)} fps mean (min ${r2(result.fps?.min)}), chart updates ${r2(result.chart_updates_per_s?.mean)}/s (sd ${r2(result.chart_updates_per_s?.sd)}), live renders ${r2(result.live_renders_per_s?.mean)}/s
posts: server ${r2(result.server_posts_per_s?.mean)}/s, received by the page ${r2(result.live_posts_per_s?.mean)}/s
JS heap: ${r2(result.heap_mb.first)} MB → ${r2(result.heap_mb.last)} MB (max ${r2(result.heap_mb.max)}; ${r2(heapAfterGc)} MB after GC at the end)
written: ${join(out, "perf.json")}, ${shot}`);
