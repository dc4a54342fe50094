// Lighthouse audits of a running dashboard with Debian's Chromium: the desktop preset and the
// default (mobile) preset, each run `--runs` times, the median performance run reported.
//
//   node lighthouse/run.mjs http://127.0.0.1:8080/ [--runs 3] [--out DIR]
//
// Prints one line per preset (scores 0-100 and the metrics behind performance) and writes the
// median run's JSON report per preset under DIR when given.
import fs from "node:fs";
import path from "node:path";
import lighthouse from "lighthouse";
import desktopConfig from "lighthouse/core/config/desktop-config.js";
import * as chromeLauncher from "chrome-launcher";

const args = process.argv.slice(2);
const url = args.find((a) => !a.startsWith("--") && !args[args.indexOf(a) - 1]?.startsWith("--"));
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
if (!url) {
  console.error("usage: node lighthouse/run.mjs URL [--runs N] [--out DIR]");
  process.exit(2);
}
const runs = Number(opt("--runs", "3"));
const out = opt("--out", undefined);
const chromePath = process.env.CHROME_PATH ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => fs.existsSync(p));

const presets = { desktop: desktopConfig, mobile: undefined };
const categories = ["performance", "accessibility", "best-practices"];
const metrics = {
  "first-contentful-paint": "FCP",
  "largest-contentful-paint": "LCP",
  "total-blocking-time": "TBT",
  "cumulative-layout-shift": "CLS",
  "speed-index": "SI",
};

const chrome = await chromeLauncher.launch({ chromePath, chromeFlags: ["--headless=new", "--no-sandbox", "--disable-gpu"] });
let failed = false;
try {
  for (const [name, config] of Object.entries(presets)) {
    const results = [];
    for (let i = 0; i < runs; i++) {
      const r = await lighthouse(url, { port: chrome.port, output: "json", logLevel: "error", onlyCategories: categories }, config);
      results.push(r.lhr);
    }
    results.sort((a, b) => a.categories.performance.score - b.categories.performance.score);
    const lhr = results[Math.floor(results.length / 2)];
    const scores = categories.map((c) => `${c} ${Math.round((lhr.categories[c].score ?? 0) * 100)}`).join(", ");
    const figures = Object.entries(metrics).map(([id, short]) => `${short} ${lhr.audits[id].displayValue}`).join(", ");
    const all = results.map((r) => Math.round(r.categories.performance.score * 100)).join("/");
    console.log(`${name}: ${scores} (performance of the ${runs} runs: ${all}); ${figures}`);
    for (const c of categories) {
      for (const ref of lhr.categories[c].auditRefs) {
        const a = lhr.audits[ref.id];
        if (ref.weight > 0 && a.score !== null && a.score < 0.9) console.log(`  ${c}: ${a.id} ${a.score} ${a.displayValue ?? ""}`);
      }
    }
    if (out) {
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, `lighthouse-${name}.json`), JSON.stringify(lhr));
    }
    if (lhr.runtimeError) {
      console.error(`${name}: ${lhr.runtimeError.code} ${lhr.runtimeError.message}`);
      failed = true;
    }
  }
} finally {
  await chrome.kill();
}
process.exit(failed ? 1 : 0);
