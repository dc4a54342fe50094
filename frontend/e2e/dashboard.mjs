// End-to-end test of the dashboard in headless Chromium against a running Pulse that a
// generator has fed (tests/dashboard.rs sets that up; it also runs by hand):
//
//   node e2e/dashboard.mjs http://127.0.0.1:8080 [--out DIR] [--no-spike]
//
// Checks that a server without authentication is flagged by the open-mode banner, that every
// panel renders, that the numbers on screen equal the REST API's, that the
// filters drive the view and the URL, that a post POSTed to /api/v1/events (an XADD) is in the
// live stream within 2 s, that a topic created in the Topics panel previews the posts it would
// match, is saved, and as the topic filter scopes the stream (posts wearing its chip) and the
// overall figures to its posts, that a scripted share cascade fills the viral panel with the
// trending listing's figures (score, probability, interval, dynamics, momentum), and that a burst of negative posts shows up as a negative share
// rising and a negativity alert, which it acknowledges, that a new alert channel is listed
// and its test message arrives, and that the Search view finds the generator's posts as the
// search API does (marked words, facets, the next page on scrolling, relevance order, a facet
// as a filter, a refused query marked where it went wrong, CSV and JSON-lines exports, a saved
// search run again and deleted, a topic made of the search), also at a phone's width, and that
// a view saved from the page opens by its link over a period, and a digest scheduled in the
// Digests panel is sent and previewed.
// Screenshots go to DIR (default e2e-output/). Exits 0 and prints "all dashboard checks passed"
// when everything holds.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { launch } from "./browser.mjs";
import { postCascade } from "./cascade.mjs";
import { PANELS, check, cli, screenshots, step, until, waitForPanels } from "./harness.mjs";

const { base, flag, out } = cli("dashboard.mjs BASE_URL [--out DIR] [--no-spike]");
const spike = !flag("--no-spike");

const api = async (path, init) => {
  const res = await fetch(base + path, init);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
};

const browser = await launch();
const page = browser.context.pages()[0] ?? (await browser.context.newPage());
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
// Failed requests a step provokes on purpose ({ status, path }), which the browser logs as errors.
const allowedFailures = [];
page.on("console", (m) => {
  if (m.type() !== "error") return;
  const url = m.location().url ?? "";
  if (allowedFailures.some((a) => m.text().includes(`status of ${a.status}`) && url.includes(a.path))) return;
  pageErrors.push(url ? `${m.text()} (${url})` : m.text());
});
const shot = screenshots(page, out);
const attr = (sel, name) => page.locator(sel).first().getAttribute(name);
const text = async (sel) => (await page.locator(sel).first().textContent())?.trim();
const fmt = (fn, ...v) => page.evaluate(([f, x]) => window.__pulse.format[f](...x), [fn, v]);

try {
  // 1. First load.
  const started = Date.now();
  await page.goto(`${base}/?window=1h`);
  await page.waitForSelector('[data-testid="posts"]', { timeout: 15_000 });
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0];
    return { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd };
  });
  step(`first load: DOMContentLoaded ${Math.round(nav.dcl)} ms, load ${Math.round(nav.load)} ms, first figures after ${Date.now() - started} ms`);

  // 1b. On a server without authentication a warning says so, above everything, in view
  // however far the page scrolls.
  const auth = await api("/api/v1/auth/status");
  const banner = page.locator('[data-testid="open-mode-banner"]');
  if (auth.mode === "open") {
    await banner.waitFor({ state: "visible", timeout: 5000 }).catch(() => {
      throw new Error("the server runs in open mode and the dashboard shows no warning");
    });
    const said = (await banner.textContent()).trim();
    check(/without authentication/i.test(said) && /anyone who can reach it can read and change everything/i.test(said), `the open-mode banner says: ${said}`);
    check((await banner.getAttribute("role")) === "alert", "the open-mode banner is not role=alert");
    const top = await banner.evaluate((el) => {
      window.scrollTo(0, document.body.scrollHeight);
      const { top, bottom } = el.getBoundingClientRect();
      window.scrollTo(0, 0);
      return { top, bottom };
    });
    check(top.top >= 0 && top.bottom <= 200, `the open-mode banner scrolls out of view: ${JSON.stringify(top)}`);
    step(`open mode: the warning banner is shown and stays in view ("${said.slice(0, 60)}…")`);
  } else {
    check((await banner.count()) === 0, `the open-mode banner shows on a server in ${auth.mode} mode`);
  }

  // 2. Every panel renders, with content.
  const panels = { ...PANELS, products: '[data-testid="product-row"] [data-testid="row-sov"]' };
  await waitForPanels(page, panels, 10_000);
  await page.waitForSelector('[data-testid="connection"][data-status="open"]', { timeout: 10_000 });
  step(`all ${Object.keys(panels).length} panels render; WebSocket connected`);
  await page.waitForSelector('[data-testid="term"]', { timeout: 15_000 }).catch(() => {});
  await shot("dashboard");

  // 2b. "Forecast a post": the draft's forecast on screen is the API's for the same draft.
  {
    const draft = { text: "Our new headphones ship today, and they are lovely #launch", platform: "twitter", author: { id: "e2e-forecaster", followers: 1200 }, lang: "en-GB" };
    await page.fill('[data-testid="forecast-text"]', draft.text);
    await page.fill('[data-testid="forecast-author-id"]', draft.author.id);
    await page.fill('[data-testid="forecast-followers"]', String(draft.author.followers));
    await page.fill('[data-testid="forecast-lang"]', draft.lang);
    await page.click('[data-testid="forecast-submit"]');
    const shown = await page.waitForSelector('[data-testid="forecast-result"]', { timeout: 15_000 }).catch(() => null);
    check(shown, `no forecast appeared: ${await page.locator('[data-testid="forecast-error"]').textContent().catch(() => "no error shown")}`);
    const onScreen = Number(await shown.getAttribute("data-expected"));
    const direct = await api("/api/v1/forecast", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ posts: [draft] }),
    });
    const expected = direct.forecasts[0].expected_shares;
    // Both were asked "now": only the hour of day can differ between them.
    check(Math.abs(onScreen - expected) <= 0.02 * expected, `the forecast on screen (${onScreen}) is not the API's (${expected})`);
    const author = await page.locator('[data-testid="forecast-author"]').textContent();
    check(author.startsWith("New author"), `a never-seen author is not called new: ${author}`);
    const model = await page.locator('[data-testid="forecast-model"]').textContent();
    check(model.startsWith("read as en ·"), `the language given is not the one the text was read in: ${model}`);
    step(`forecast a post: ${Math.round(onScreen)} shares expected on screen, ${Math.round(expected)} from the API`);
  }

  // 3. The numbers on screen are the REST API's (the feed has stopped, so both are settled).
  const compareOverall = async (query, label) => {
    let rest;
    const same = await until(10_000, async () => {
      rest = (await api(`/api/v1/metrics/overall?${query}`)).stats;
      return Number(await attr('[data-testid="posts"]', "data-value")) === rest.posts;
    });
    check(same, `${label}: page shows ${await attr('[data-testid="posts"]', "data-value")} posts, REST ${rest.posts}`);
    const expect = {
      posts: ["compact", rest.posts],
      "negative-share": ["percent", rest.sentiment.negative_share],
      "neutral-share": ["percent", rest.sentiment.neutral_share],
      "positive-share": ["percent", rest.sentiment.positive_share],
      "sentiment-mean": ["signed", rest.sentiment.mean],
      "churn-share": ["percent", rest.churn.high_share],
      toxicity: ["percent", rest.toxicity_mean],
    };
    for (const [id, [f, v]] of Object.entries(expect)) {
      const shown = await text(`[data-testid="${id}"]`);
      check(shown === (await fmt(f, v)), `${label}: ${id} shows ${shown}, REST says ${v} (${await fmt(f, v)})`);
      check(Math.abs(Number(await attr(`[data-testid="${id}"]`, "data-value")) - v) < 1e-9, `${label}: ${id} value differs from REST`);
    }
    for (const e of ["anger", "joy", "optimism", "sadness"]) {
      check(Number(await attr(`[data-testid="emotion-${e}"]`, "data-value")) === rest.emotions[e], `${label}: emotion ${e} differs`);
    }
    return rest;
  };
  const overall = await compareOverall("window=1h", "overall");
  check(overall.posts > 0, "the generator fed no posts");

  const compareRanked = async (rowId, items, label, sov = false) => {
    const rows = await until(10_000, async () => {
      const rows = await page.locator(`[data-testid="${rowId}"]`).evaluateAll((els) =>
        els.map((el) => ({
          key: el.dataset.key,
          posts: Number(el.dataset.posts),
          text: el.querySelector('[data-testid="row-posts"]').textContent,
          extra: el.querySelector('[data-testid="row-sov"], [data-testid="row-mean"]').textContent,
        })),
      );
      const ok = rows.length > 0 && rows.every((r, i) => items[i] && items[i].key === r.key && items[i].posts === r.posts);
      return ok && rows;
    });
    check(rows, `${label}: rows differ from REST ${JSON.stringify(items.slice(0, 8).map((i) => [i.key, i.posts]))}`);
    for (const [i, r] of rows.entries()) {
      check(r.text === (await fmt("compact", items[i].posts)), `${label} ${r.key}: shows ${r.text}`);
      const want = sov ? `${await fmt("percent", items[i].share_of_voice.volume)} SoV` : await fmt("signed", items[i].sentiment.mean);
      check(r.extra === want, `${label} ${r.key}: shows ${r.extra}, REST ${want}`);
    }
  };
  await compareRanked("platform-row", (await api("/api/v1/metrics/platforms?window=1h")).items, "platforms");
  await compareRanked("product-row", (await api("/api/v1/metrics/products?window=1h")).items, "products", true);
  await compareRanked("channel-row", (await api("/api/v1/metrics/channels?window=1h")).items, "channels");
  const geo = await api("/api/v1/metrics/geo?window=1h");
  await compareRanked("country-row", geo.countries, "countries");
  await compareRanked("city-row", geo.cities, "cities");
  const pipeline = await api("/api/v1/pipeline");
  const dead = await until(5000, async () => Number(await attr('[data-testid="dead-letters"]', "data-value")) === pipeline.consumer_group.dead_letters);
  check(dead, "pipeline: dead letters differ from REST");
  check((await page.locator('[data-testid="model"]').first().textContent()).includes(pipeline.models[0]?.model ?? "?"), "pipeline: model in use not shown");
  step("overall, emotions, platforms, products (share of voice), channels, countries, cities and pipeline figures equal the REST API's");

  // 3b. A share cascade fills the viral panel, with the trending listing's figures.
  const cascadeId = `e2e-cascade-${Date.now()}`;
  const cascadeAt = Date.now();
  await postCascade(base, cascadeId);
  await page.waitForSelector(`[data-testid="viral"][data-id="${cascadeId}"]`, { timeout: 20_000 }).catch(() => {
    throw new Error(`the cascade ${cascadeId} did not appear in the viral panel`);
  });
  step(`cascade ${cascadeId} in the viral panel ${Date.now() - cascadeAt} ms after its XADD`);
  const tracked = await until(20_000, async () => {
    const res = await fetch(`${base}/api/v1/posts/${cascadeId}/virality`);
    return res.ok && (await res.json()).current.counts.shares === 60;
  });
  check(tracked, "the tracker did not count the cascade's 60 shares");
  const compareViral = async (query, label) => {
    let listed = [];
    let rows = [];
    const same = await until(20_000, async () => {
      listed = (await api(`/api/v1/trending/posts?limit=20${query}`)).items;
      rows = await page.locator('[data-testid="viral"]').evaluateAll((els) =>
        els.map((el) => ({
          id: el.dataset.id,
          platform: el.dataset.platform,
          score: Number(el.dataset.score),
          probability: Number(el.dataset.probability),
          lower: Number(el.dataset.lower),
          upper: Number(el.dataset.upper),
          dynamics: el.dataset.dynamics,
          velocity: Number(el.dataset.velocity),
          acceleration: Number(el.dataset.acceleration),
          text: Object.fromEntries(
            ["score", "probability", "interval", "dynamics", "velocity", "acceleration", "shares"].map((k) => [
              k,
              el.querySelector(`[data-testid="viral-${k}"]`).textContent.trim(),
            ]),
          ),
        })),
      );
      return (
        rows.length === listed.length &&
        rows.every((r, i) => {
          const v = listed[i];
          return (
            r.id === v.post_id && r.score === v.virality_score && r.probability === v.virality_probability &&
            r.lower === v.confidence_interval.lower && r.upper === v.confidence_interval.upper &&
            r.dynamics === v.virality_dynamics && r.velocity === v.momentum.velocity &&
            r.acceleration === v.momentum.acceleration
          );
        })
      );
    });
    check(same, `${label}: viral rows ${JSON.stringify(rows.map((r) => [r.id, r.score]))} differ from REST ${JSON.stringify(listed.map((v) => [v.post_id, v.virality_score]))}`);
    for (const [i, r] of rows.entries()) {
      const v = listed[i];
      const want = {
        score: await fmt("score", v.virality_score),
        probability: `${await fmt("percent", v.virality_probability)} viral`,
        interval: `${await fmt("compact", v.confidence_interval.lower)}–${await fmt("compact", v.confidence_interval.upper)}`,
        dynamics: v.virality_dynamics,
        velocity: await fmt("perMinute", v.momentum.velocity),
        acceleration: `(${await fmt("signed", v.momentum.acceleration, 1)})`,
        shares: `${await fmt("compact", v.counts.shares)} ${v.counts.shares === 1 ? "share" : "shares"}`,
      };
      for (const [k, w] of Object.entries(want)) check(r.text[k] === w, `${label} ${r.id}: ${k} shows ${r.text[k]}, REST ${w}`);
    }
    return listed;
  };
  const listed = await compareViral("", "viral");
  const mine = listed.find((v) => v.post_id === cascadeId);
  check(mine && mine.counts.shares === 60, `the cascade is not listed with its 60 shares: ${JSON.stringify(mine?.counts)}`);
  check(mine.virality_score > 0 && mine.confidence_interval.upper >= mine.confidence_interval.lower, "the cascade has no score");
  check(mine.virality_dynamics === "deep", `a binary tree of reshares should be deep, got ${mine.virality_dynamics}`);
  await page.locator(`[data-testid="viral"][data-id="${cascadeId}"]`).scrollIntoViewIfNeeded();
  await shot("viral");
  step(`viral panel: ${listed.length} posts with the listing's score, probability, interval, dynamics and momentum (cascade: score ${mine.virality_score}, ${mine.virality_dynamics})`);

  // 4. Filters drive every panel and the URL.
  const platform = (await api("/api/v1/metrics/platforms?window=1h")).items[0].key;
  await page.selectOption('[data-testid="filter-platform"]', platform);
  await until(5000, async () => page.url().includes(`platform=${platform}`));
  check(page.url().includes(`platform=${platform}`) && page.url().includes("window=1h"), `URL does not hold the filter: ${page.url()}`);
  await compareOverall(`window=1h&platform=${platform}`, `filtered (${platform})`);
  const platforms = await until(5000, async () => {
    const shown = await page.locator('[data-testid="post"] .plat').allTextContents();
    return shown.length > 0 && shown.every((p) => p === platform) && shown;
  });
  check(platforms, `stream shows other platforms than ${platform}`);
  await compareViral(`&platform=${platform}`, `viral (${platform})`);
  await shot("filtered");
  await page.reload();
  await page.waitForSelector('[data-testid="posts"]');
  check((await page.inputValue('[data-testid="filter-platform"]')) === platform, "a reload lost the filter");
  await page.click('button:has-text("Clear filters")');
  await until(5000, async () => !page.url().includes("platform="));
  step(`filter platform=${platform}: URL, overall figures and stream follow it and survive a reload`);

  // 5. A new post is on screen within 2 s of its XADD.
  await page.waitForSelector('[data-testid="connection"][data-status="open"]');
  for (let i = 0; i < 3; i++) {
    const id = `e2e-${Date.now()}-${i}`;
    const event = {
      type: "post", id, platform: "reddit", author: { id: "e2e", followers: 10 },
      text: "Checking the live stream of the dashboard, works nicely", created_at: new Date().toISOString(),
      product: "pulse-phone", channel: "organic",
    };
    await api("/api/v1/events", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(event) });
    const t0 = Date.now();
    await page.waitForSelector(`[data-testid="post"][data-id="${id}"]`, { timeout: 2000 }).catch(() => {
      throw new Error(`post ${id} was not in the stream 2 s after its XADD`);
    });
    step(`post ${id} in the stream ${Date.now() - t0} ms after its XADD was acknowledged`);
  }

  // Pause holds the list; resume shows what came meanwhile.
  await page.click('[data-testid="pause"]');
  const pausedId = `e2e-paused-${Date.now()}`;
  await api("/api/v1/events", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "post", id: pausedId, platform: "reddit", author: { id: "e2e", followers: 1 }, text: "held while paused", created_at: new Date().toISOString() }),
  });
  await until(3000, async () => (await text('[data-testid="pause"]'))?.includes("new"));
  check(!(await page.locator(`[data-testid="post"][data-id="${pausedId}"]`).count()), "a paused stream still showed a new post");
  check((await text('[data-testid="pause"]')).includes("1 new"), `paused button says ${await text('[data-testid="pause"]')}`);
  await page.click('[data-testid="pause"]');
  await page.waitForSelector(`[data-testid="post"][data-id="${pausedId}"]`, { timeout: 2000 });
  step("pause holds the stream and counts new posts; resume shows them");

  // 5b. Topics: as the open server's user, a topic made in the Topics panel. Posts holding its
  // word are stored first, so the preview has something to count; posts sent once the
  // matchers picked the topic up carry it, and choosing it in the topic selector shows those.
  {
    const word = `e2etopic${Date.now()}`;
    const name = `e2e topic ${Date.now()}`;
    const sendPost = async (id, text) =>
      api("/api/v1/events", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "post", id, platform: "reddit", author: { id: "e2e-topics", followers: 5 }, text, created_at: new Date().toISOString(), product: "pulse-phone", channel: "organic" }),
      });
    /** The stored post `id`, once it is stored (within 10 s), else false. */
    const storedPost = (id) =>
      until(10_000, async () => {
        const res = await fetch(`${base}/api/v1/posts/${encodeURIComponent(id)}`);
        return res.ok && res.json();
      });
    for (let i = 0; i < 2; i++) {
      const id = `e2e-topic-seed-${Date.now()}-${i}`;
      await sendPost(id, `Listening for ${word} on the dashboard, seed ${i}`);
      check(await storedPost(id), `the seed post ${id} was not stored`);
    }

    const form = page.locator('[data-testid="topic-new"]');
    await form.locator('[data-testid="topic-name"]').fill(name);
    await form.locator('[data-testid="topic-query"]').fill(word);
    const preview = form.locator('[data-testid="topic-preview"]');
    const previewed = await until(15_000, async () => {
      if ((await preview.count()) === 0) return false;
      const [query, pending, matches] = await Promise.all(["data-query", "data-pending", "data-matches"].map((a) => preview.getAttribute(a)));
      return query === word && pending === "false" && Number(matches) >= 1 && Number(matches);
    });
    check(previewed, `the preview of ${word} shows no match: ${await preview.textContent().catch(() => "no preview")}`);
    const said = (await preview.textContent()).trim();
    check(/match(es)? in the last 24 h/.test(said), `the preview reads: ${said}`);
    const samples = await form.locator('[data-testid="topic-sample"]').allTextContents();
    check(samples.length >= 1 && samples.every((t) => t.includes(word)), `the preview's samples are not the seed posts: ${JSON.stringify(samples)}`);
    step(`topic preview: "${said}"`);

    await form.locator('[data-testid="topic-save"]').click();
    await form.locator('[data-testid="topic-saved"], [data-testid="topic-error"]').first().waitFor({ timeout: 10_000 });
    check(!(await form.locator('[data-testid="topic-error"]').count()), `saving the topic failed: ${await form.locator('[data-testid="topic-error"]').textContent().catch(() => "")}`);
    const topic = (await api("/api/v1/topics")).items.find((t) => t.name === name);
    check(topic && topic.query === word && topic.version === 1 && topic.status === "active", `the saved topic is not the one typed: ${JSON.stringify(topic)}`);
    await page.waitForSelector(`[data-testid="topic-row"][data-id="${topic.id}"]`, { timeout: 10_000 }).catch(() => {
      throw new Error(`topic ${topic.id} is not listed in the Topics panel`);
    });

    // The matchers take the topic up within topics.refresh_ms: posts sent from then on carry it.
    let sent = 0;
    const tagged = await until(20_000, async () => {
      const id = `e2e-topic-${Date.now()}-${sent++}`;
      // With an emotion cue, so the Emotions panel has figures to compare under the filter.
      await sendPost(id, `Is ${word} matched yet? I love it, great. Post ${sent}`);
      const post = await storedPost(id);
      return post && post.topics.includes(topic.id) && post;
    }, 500);
    check(tagged, `no post holding ${word} was stored with topic ${topic.id} (${sent} sent)`);
    check(tagged.topic_versions[tagged.topics.indexOf(topic.id)] === 1, `post ${tagged.id} matched version ${JSON.stringify(tagged.topic_versions)}`);

    // The review queue of the topic, keys only: `x` (not about it) takes the post out of the
    // topic's figures at once, kept as filtered; `u` undoes it and the post counts again.
    {
      const panel = page.locator('[data-testid="review-panel"]');
      await panel.scrollIntoViewIfNeeded();
      await page.selectOption('[data-testid="review-queue"]', String(topic.id));
      await page.click('[data-testid="review-start"]');
      const shown = page.locator('[data-testid="review-post"]');
      await shown.waitFor({ timeout: 10_000 }).catch(async () => {
        throw new Error(`the review queue shows no post: ${await panel.textContent()}`);
      });
      const first = await shown.getAttribute("data-post-id");
      await panel.focus();
      await page.keyboard.press("x");
      const out = await until(10_000, async () => {
        const p = await storedPost(first);
        return p && p.filtered_topics.includes(topic.id) && !p.topics.includes(topic.id) && p;
      });
      check(out, `post ${first} was not filtered out of topic ${topic.id} by the key x`);
      const given = (await api(`/api/v1/labels?post_id=${encodeURIComponent(first)}`)).items;
      check(given.some((l) => l.kind === "relevance" && l.value === "unrelated" && l.topic_id === topic.id), `the labels of ${first}: ${JSON.stringify(given)}`);
      const shownFiltered = await until(15_000, async () => (await attr('[data-testid="review-relevance"]', "data-filtered")) === "1");
      check(shownFiltered, `the queue does not say the topic filters one post: ${await page.locator('[data-testid="review-relevance"]').textContent().catch(() => "no line")}`);
      await shot("review");
      await panel.focus();
      await page.keyboard.press("u");
      const back = await until(10_000, async () => {
        const p = await storedPost(first);
        return p && p.topics.includes(topic.id) && !p.filtered_topics.includes(topic.id) && p;
      });
      check(back, `undoing the label did not bring post ${first} back into topic ${topic.id}`);
      const undone = (await api(`/api/v1/labels?post_id=${encodeURIComponent(first)}&include_undone=true`)).items;
      check(undone.length === 1 && undone[0].undone_at, `the label of ${first} is not kept as undone: ${JSON.stringify(undone)}`);
      step(`review queue: the key x filtered ${first} out of topic ${topic.id} at once; u brought it back, the label kept as undone`);
      // The queue of every post says which sentiment calibration is in use, as the API does.
      await page.selectOption('[data-testid="review-queue"]', "");
      const calibration = await api("/api/v1/calibration");
      const line = page.locator('[data-testid="review-calibration"]');
      await line.waitFor({ timeout: 10_000 }).catch(() => {});
      const active = await attr('[data-testid="review-calibration"]', "data-active");
      check(active === String(calibration.active_id ?? "none"), `the queue shows calibration ${active}, the API ${calibration.active_id}`);
      const said = (await line.textContent()) ?? "";
      check(said.startsWith("Sentiment: "), `the calibration line reads ${JSON.stringify(said)}`);
      step(`review queue: the sentiment calibration in use shown as the API has it (${said})`);
    }

    await page.waitForSelector(`[data-testid="filter-topic"] option[value="${topic.id}"]`, { state: "attached", timeout: 35_000 });
    await page.selectOption('[data-testid="filter-topic"]', String(topic.id));
    await until(5000, async () => page.url().includes(`topic=${topic.id}`));
    check(page.url().includes(`topic=${topic.id}`), `the URL does not hold the topic: ${page.url()}`);
    const streamOfTopic = () =>
      page.locator('[data-testid="post"]').evaluateAll((els) =>
        els.map((el) => ({
          id: el.dataset.id,
          chips: [...el.querySelectorAll('[data-testid="post-topic"]')].map((c) => ({ id: c.dataset.id, name: c.textContent.trim() })),
        })),
      );
    const wears = (p) => p.chips.some((c) => c.id === String(topic.id) && c.name === name);
    const shown = await until(10_000, async () => {
      const posts = await streamOfTopic();
      return posts.some((p) => p.id === tagged.id) && posts.every(wears) && posts;
    });
    check(shown, `with topic ${topic.id} the stream shows ${JSON.stringify(await streamOfTopic())}, not only the topic's posts with its chip`);

    // Live: a post without the word is left out, one with it arrives wearing the chip.
    const other = `e2e-topic-other-${Date.now()}`;
    const mine = `e2e-topic-live-${Date.now()}`;
    await sendPost(other, "A post about nothing the topic listens for");
    await sendPost(mine, `Live and on topic: ${word}`);
    await page.waitForSelector(`[data-testid="post"][data-id="${mine}"] [data-testid="post-topic"][data-id="${topic.id}"]`, { timeout: 5000 }).catch(() => {
      throw new Error(`post ${mine} did not arrive with the topic's chip`);
    });
    check(!(await page.locator(`[data-testid="post"][data-id="${other}"]`).count()), "a post without the topic's word showed under the topic filter");
    check((await streamOfTopic()).every(wears), "a post without the topic's chip showed under the topic filter");
    await compareOverall(`window=1h&topic=${topic.id}`, `topic ${name}`);

    // Its share of voice is the API's.
    const row = page.locator(`[data-testid="topic-row"][data-id="${topic.id}"]`);
    let sov;
    const counted = await until(15_000, async () => {
      sov = (await api("/api/v1/metrics/topics?window=1h")).items.find((t) => t.id === topic.id);
      return sov && sov.posts >= 2 && Number(await row.getAttribute("data-posts")) === sov.posts;
    });
    check(counted, `the Topics panel shows ${await row.getAttribute("data-posts")} posts for the topic, the API ${sov?.posts}`);
    await row.scrollIntoViewIfNeeded();
    await shot("topics");
    await page.click('button:has-text("Clear filters")');
    await until(5000, async () => !page.url().includes("topic="));
    step(`topic "${name}" (${word}): previewed, saved, matched live after ${sent} posts; as a filter the stream shows only its posts with their chip, figures equal the API's (${sov.posts} posts, ${Math.round(sov.share_of_voice.volume * 100)}% share of voice)`);
  }

  // 6. A scripted negativity spike shows up.
  if (spike) {
    // The last five minutes, where a burst weighs more than in the hour.
    await page.selectOption('[data-testid="filter-window"]', "5m");
    const rest5m = await api("/api/v1/metrics/overall?window=5m");
    await until(5000, async () => Number(await attr('[data-testid="posts"]', "data-value")) === rest5m.stats.posts);
    const before = Number(await attr('[data-testid="negative-share"]', "data-value"));
    const burst = Array.from({ length: 400 }, (_, i) => ({
      type: "post", id: `spike-${Date.now()}-${i}`, platform: "twitter", author: { id: `angry${i}`, followers: 50 },
      text: "This is awful, I hate it. Worst update ever, totally broken and useless. Cancelling my subscription.",
      created_at: new Date().toISOString(), product: "pulse-cloud", channel: "support",
    }));
    await api("/api/v1/events", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(burst) });
    // 400 negative posts on top of n: the share should move at least half way to that.
    const n = rest5m.stats.posts;
    const expected = (before * n + burst.length) / (n + burst.length);
    const rose = await until(15_000, async () => {
      const now = Number(await attr('[data-testid="negative-share"]', "data-value"));
      return now >= before + (expected - before) / 2 && now;
    });
    check(rose, `negative share did not rise after the spike (was ${before})`);
    // The hate score is a badge beside toxicity; both equal the API's.
    const shown = await page.locator('[data-testid="post"]:has([data-testid="hate"])').first().getAttribute("data-id");
    check(shown, "no post shows a hate badge after the spike");
    const analysis = (await api(`/api/v1/posts/${encodeURIComponent(shown)}`)).analysis;
    for (const k of ["toxicity", "hate"]) {
      const badge = page.locator(`[data-testid="post"][data-id="${shown}"] [data-testid="${k}"]`);
      check(Number(await badge.getAttribute("data-value")) === analysis[k], `${shown}: ${k} differs from REST ${analysis[k]}`);
      const want = `${k === "hate" ? "hate" : "toxic"} ${await fmt("percent", analysis[k])}`;
      check((await badge.textContent()).trim() === want, `${shown}: ${k} badge shows ${await badge.textContent()}, REST ${want}`);
    }
    step(`post ${shown}: toxicity ${analysis.toxicity.toFixed(2)} and hate ${analysis.hate.toFixed(2)} badges equal the API's`);
    step(`negativity spike: negative share ${Math.round(before * 100)}% → ${Math.round(rose * 100)}%`);
    const alert = await page
      .waitForSelector('[data-testid="alert"][data-kind="negativity"][data-status="firing"]', { timeout: 30_000 })
      .catch(() => null);
    check(alert, "no negativity alert appeared in the alert feed");
    await shot("spike");
    await page.locator('[data-testid="alert"][data-kind="negativity"][data-status="firing"] button').first().click();
    await page.waitForSelector('[data-testid="alert"][data-kind="negativity"][data-status="acknowledged"]', { timeout: 5000 });
    const acked = await api("/api/v1/alerts?kind=negativity&status=acknowledged");
    check(acked.items.length >= 1, "the acknowledgement did not reach the API");
    step("negativity alert appeared live and was acknowledged through the API");
  }

  // Alert channels: a Slack channel to a receiver of ours is listed, and its test message
  // arrives in Slack's shape and is reported in the panel.
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push(JSON.parse(body));
      res.writeHead(200).end("ok");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const created = await api("/api/v1/webhooks", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "slack", name: "e2e slack", url: `http://127.0.0.1:${receiver.address().port}/services/e2e` }),
  });
  await page.reload();
  const row = page.locator(`[data-panel="alert-channels"] [data-testid="channel"][data-id="${created.id}"]`);
  await row.waitFor({ timeout: 15_000 }).catch(() => {
    throw new Error(`channel ${created.id} is not in the alert channels panel`);
  });
  check((await row.textContent()).includes("e2e slack"), `the channel row shows ${await row.textContent()}`);
  await row.locator('[data-testid="channel-test"]').click();
  const result = row.locator('[data-testid="channel-test-result"]');
  await result.waitFor({ timeout: 15_000 });
  check((await result.textContent()).trim() === "test delivered (200)", `the test result reads ${await result.textContent()}`);
  check(received.length === 1 && received[0].text.includes("Test message from Pulse") && Array.isArray(received[0].blocks), `the receiver got ${JSON.stringify(received)}`);
  await row.scrollIntoViewIfNeeded();
  await shot("channels");
  step("alert channels: the new Slack channel is listed and its test message arrived in Slack's shape");

  // 6c. Saved views: the page's state (a filter, the window, a hidden panel) saved under a name
  // and shared; a digest's link to it opens it over the digest's period, figures the API's.
  await page.goto(`${base}/?window=1h&platform=${platform}`);
  await page.waitForSelector('[data-testid="posts"]');
  await page.click('[data-testid="panels-chooser"] summary');
  await page.uncheck('[data-testid="panel-toggle-forecast"]');
  await until(5000, async () => page.url().includes("panels="));
  check((await page.locator('[data-panel="forecast"]').count()) === 0, "the forecast panel is still shown after it was hidden");
  await page.click('[data-testid="panels-chooser"] summary');
  const viewName = `e2e view ${Date.now()}`;
  await page.click('[data-testid="view-save-as"]');
  await page.fill('[data-testid="view-name"]', viewName);
  await page.check('[data-testid="view-shared"]');
  await page.click('[data-testid="view-save"]');
  await until(5000, async () => page.url().includes("saved_view="));
  const saved = (await api("/api/v1/views")).items.find((v) => v.name === viewName);
  check(
    saved && saved.shared && saved.state.filters.platform === platform && saved.state.window === "1h" && saved.state.panels.includes("overall") && !saved.state.panels.includes("forecast"),
    `the view saved is ${JSON.stringify(saved)}`,
  );
  const minute = (t) => new Date(Math.floor(t / 60_000) * 60_000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const since = minute(Date.now() - 2 * 3_600_000);
  const until_ = minute(Date.now() + 60_000);
  await page.goto(`${base}/?saved_view=${saved.id}&since=${since}&until=${until_}`);
  await page.waitForSelector('[data-testid="period"]', { timeout: 10_000 });
  await until(5000, async () => (await page.inputValue('[data-testid="filter-platform"]')) === platform);
  check((await page.inputValue('[data-testid="filter-platform"]')) === platform, "the view's platform filter was not applied");
  check((await page.inputValue('[data-testid="views-select"]')) === String(saved.id), "the view is not shown as open");
  check((await page.locator('[data-panel="forecast"]').count()) === 0, "the view's hidden panel is shown");
  await page.locator('[data-testid="views-select"] option', { hasText: viewName }).waitFor({ state: "attached" });
  check((await page.locator('[data-testid="view-changed"]').count()) === 0, "a digest's period over the view reads as a change to it");
  await compareOverall(`from=${since}&to=${until_}&platform=${platform}`, `view "${viewName}" over ${since} – ${until_}`);
  step(`saved view "${viewName}": saved shared with platform=${platform}, window 1h and the forecast panel hidden; opened by link over a period, figures equal the API's`);

  // 6d. Digests: a schedule made in the panel, pointing at the view, sent now to the Slack
  // receiver (its link opens the view); a preview renders the e-mail with its chart in the page.
  const digestName = `e2e digest ${Date.now()}`;
  await page.click('[data-testid="digest-new"]');
  await page.fill('[data-testid="digest-name"]', digestName);
  await page.selectOption('[data-testid="digest-cadence"]', "daily");
  await page.fill('[data-testid="digest-timezone"]', "Europe/Paris");
  await page.check(`[data-testid="digest-channel-${created.id}"]`);
  await page.selectOption('[data-testid="digest-view"]', String(saved.id));
  await page.click('[data-testid="digest-create"]');
  const schedule = page.locator('[data-testid="digest-schedule"]').filter({ hasText: digestName });
  await schedule.waitFor({ timeout: 10_000 }).catch(async () => {
    throw new Error(`the schedule is not listed: ${await page.locator('[data-panel="digests"]').textContent()}`);
  });
  const stored = (await api("/api/v1/digests/schedules")).items.find((x) => x.name === digestName);
  check(stored && stored.cadence === "daily" && stored.timezone === "Europe/Paris" && stored.view === saved.id && stored.channels.includes(created.id), `the schedule stored is ${JSON.stringify(stored)}`);
  const before = received.length;
  await schedule.locator('[data-testid="digest-send"]').click();
  await page.locator('[data-testid="digests-note"]').waitFor({ timeout: 15_000 });
  const digest = await until(30_000, async () => received.length > before && received[received.length - 1]);
  check(digest && Array.isArray(digest.blocks) && JSON.stringify(digest).includes(`saved_view=${saved.id}`), `the receiver got ${JSON.stringify(digest).slice(0, 300)}`);
  await page.click('[data-testid="digest-preview-button"]');
  const frame = page.frameLocator('[data-testid="digest-preview-frame"]');
  await frame.locator("img").first().waitFor({ timeout: 15_000 });
  const chart = await frame.locator("img").first().evaluate((i) => ({ w: i.naturalWidth, h: i.naturalHeight }));
  check(chart.w > 0 && chart.h > 0, `the preview's chart did not load: ${JSON.stringify(chart)}`);
  const previewPosts = Number(await attr('[data-testid="digest-preview"]', "data-posts"));
  const frameText = await frame.locator("body").textContent();
  check(frameText.includes(previewPosts.toLocaleString("en-US")) || frameText.includes(String(previewPosts)), `the preview's e-mail does not say its ${previewPosts} posts`);
  await page.locator('[data-panel="digests"]').scrollIntoViewIfNeeded();
  await shot("digests");
  step(`digests: "${digestName}" scheduled in the panel, sent now to Slack with the view's link; the preview renders its e-mail with a ${chart.w}×${chart.h} chart (${previewPosts} posts)`);
  receiver.close();
  await page.goto(`${base}/?window=1h`);
  await page.waitForSelector('[data-testid="posts"]');

  // 7. Search. The generator's posts (tests/api/dashboard.rs sends `pulse generate --seed 7`)
  // name the brand's products ("Pulse Phone", "Pulse Cloud"), so `pulse` matches more than a
  // page of them; nothing is posted any more, so the page and the API see the same posts.
  {
    const word = "pulse";
    const search = (params) => api(`/api/v1/search?${new URLSearchParams(params)}`);
    const hitIds = () => page.locator('[data-testid="search-hit"]').evaluateAll((els) => els.map((el) => el.dataset.id));
    const sameIds = (shown, items, from = 0) => items.length > 0 && items.every((h, i) => shown[from + i] === h.post.id);
    const query = page.locator('[data-testid="search-query"]');
    const run = async (q) => {
      await query.fill(q);
      await query.press("Enter");
    };
    // The view lists the saved searches: a server without them answers 404, which it says.
    const savedList = await fetch(`${base}/api/v1/saved-searches`);
    if (!savedList.ok) allowedFailures.push({ status: savedList.status, path: "/api/v1/saved-searches" });
    await page.click('[data-testid="view-search"]');
    await query.waitFor({ timeout: 10_000 });
    check(new URL(page.url()).searchParams.get("view") === "search", `the URL does not say the Search view: ${page.url()}`);

    // Enter runs the search; the first page is the API's, newest first.
    await run(word);
    await page.waitForSelector('[data-testid="search-hit"]', { timeout: 15_000 }).catch(async () => {
      throw new Error(`no hit for ${word}: ${await page.locator('[data-testid="search-view"]').textContent()}`);
    });
    let listed;
    const firstPage = await until(10_000, async () => {
      listed = await search({ q: word, facets: "true" });
      return sameIds(await hitIds(), listed.items);
    });
    check(firstPage, `the hits ${JSON.stringify(await hitIds())} are not the API's ${JSON.stringify(listed.items.map((h) => h.post.id))}`);
    check(new URL(page.url()).searchParams.get("q") === word, `the URL does not hold the query: ${page.url()}`);

    // The words are marked where the API says, counted in code points.
    const marked = listed.items.find((h) => h.highlights.length > 0);
    check(marked, `no hit of ${word} has a highlight`);
    const marks = await page.locator(`[data-testid="search-hit"][data-id="${marked.post.id}"] [data-testid="hit-text"] mark`).allTextContents();
    const chars = Array.from(marked.post.text);
    const want = marked.highlights.map(([s, e]) => chars.slice(s, e).join(""));
    check(marks.length >= 1 && marks.join("") === want.join(""), `post ${marked.post.id} shows marks ${JSON.stringify(marks)}, the API's highlights are ${JSON.stringify(want)}`);
    check(marks.every((m) => /^[#@]?pulse$/i.test(m)), `marks that are not the word: ${JSON.stringify(marks)}`);
    const allMarks = await page.locator('[data-testid="search-hit"] mark').count();
    check(allMarks >= listed.items.filter((h) => h.highlights.length > 0).length, `only ${allMarks} marks on the page`);

    // Facets: the total and every facet's counts are the API's, with a volume chart.
    const facets = listed.facets;
    await page.waitForSelector('[data-testid="search-facets"]', { timeout: 10_000 });
    check(Number(await attr('[data-testid="search-facets"]', "data-total")) === facets.total, `facets total ${await attr('[data-testid="search-facets"]', "data-total")}, API ${facets.total}`);
    check(Number(await attr('[data-testid="search-summary"]', "data-total")) === facets.total, "the summary does not say the API's total");
    check((await text('[data-testid="search-summary"]')).startsWith(`${facets.total.toLocaleString("en")} post`), `the summary reads ${await text('[data-testid="search-summary"]')}`);
    for (const f of ["sentiment", "platform", "lang", "product", "topic"]) {
      const rows = await page.locator(`[data-testid="facet-${f}"] [data-testid="facet-row"]`).evaluateAll((els) => els.map((el) => [el.dataset.key, Number(el.dataset.count)]));
      const api8 = facets[f].slice(0, 8).map((i) => [i.key, i.count]);
      check(JSON.stringify(rows) === JSON.stringify(api8), `facet ${f} shows ${JSON.stringify(rows)}, the API ${JSON.stringify(api8)}`);
    }
    check(facets.sentiment.length > 0 && facets.platform.length > 0, "the facets of the search are empty");
    await page.waitForSelector('[data-testid="search-volume"] svg rect', { timeout: 5000 }).catch(() => {
      throw new Error("the volume chart drew no bar");
    });
    await shot("search");
    step(`search "${word}": ${facets.total} matches, the first page (${listed.items.length}) the API's with marks ${JSON.stringify(marks)}, facets equal the API's`);

    // Scrolling to the end loads the next page, the API's second.
    if (listed.next_cursor) {
      await page.locator('[data-testid="search-more"]').scrollIntoViewIfNeeded();
      const second = await search({ q: word, cursor: listed.next_cursor });
      const grown = await until(15_000, async () => sameIds(await hitIds(), second.items, listed.items.length));
      check(grown, `scrolling to the end did not load the API's second page (${(await hitIds()).length} hits shown)`);
      step(`infinite scroll: reaching the end loaded the next ${second.items.length} hits`);
    } else {
      check(facets.total <= listed.items.length, "the API has more hits but no cursor");
    }

    // Most relevant first: the API's relevance order, each hit with its score.
    await page.click('[data-testid="search-order"] label:has-text("Most relevant")');
    await until(5000, async () => page.url().includes("order=relevance"));
    const relevant = await search({ q: word, order: "relevance" });
    const reordered = await until(10_000, async () => sameIds(await hitIds(), relevant.items));
    check(reordered, `by relevance the hits ${JSON.stringify((await hitIds()).slice(0, 5))} are not the API's ${JSON.stringify(relevant.items.slice(0, 5).map((h) => h.post.id))}`);
    check(await page.locator('[data-testid="search-hit"] .badge:has-text("relevance")').count() > 0, "hits ordered by relevance show no score");
    step("relevance order: the hits are the API's, with their scores");

    // A facet narrows the search through the dashboard's filter bar (and the URL).
    const platform = facets.platform[0].key;
    await page.click(`[data-testid="facet-platform"] [data-testid="facet-row"][data-key="${platform}"] button`);
    await until(5000, async () => page.url().includes(`platform=${platform}`));
    check((await page.inputValue('[data-testid="filter-platform"]')) === platform, "the platform facet did not set the filter bar");
    const narrowed = await search({ q: word, platform, facets: "true", order: "relevance" });
    const scoped = await until(10_000, async () => {
      const plats = await page.locator('[data-testid="search-hit"] .plat').allTextContents();
      const total = Number(await attr('[data-testid="search-facets"]', "data-total"));
      return plats.length > 0 && plats.every((p) => p === platform) && total === narrowed.facets.total && sameIds(await hitIds(), narrowed.items);
    });
    check(scoped, `with platform=${platform} the search does not show the API's ${narrowed.facets.total} matches`);
    await page.click('button:has-text("Clear filters")');
    await until(5000, async () => !page.url().includes("platform="));
    step(`facet platform=${platform}: the filter bar, the URL and the hits follow it (${narrowed.facets.total} matches)`);

    // A query that does not parse: the parser's message, the query marked where it went wrong.
    const bad = "refund AND";
    const refusedRes = await fetch(`${base}/api/v1/search?${new URLSearchParams({ q: bad })}`);
    const refused = await refusedRes.json();
    check(refusedRes.status === 400 && refused.error.code === "invalid_topic_query", `the API answers ${refusedRes.status} ${JSON.stringify(refused)}`);
    allowedFailures.push({ status: 400, path: "/api/v1/search?" });
    await run(bad);
    const shownError = page.locator('[data-testid="search-error"]');
    await shownError.waitFor({ timeout: 10_000 }).catch(() => {
      throw new Error(`"${bad}" shows no error`);
    });
    check((await shownError.getAttribute("data-code")) === "invalid_topic_query", `the error is ${await shownError.getAttribute("data-code")}`);
    check((await shownError.textContent()).includes(refused.error.message), `the error reads ${await shownError.textContent()}, the API ${refused.error.message}`);
    const at = Number(await shownError.locator('[data-testid="topic-error-mark"]').getAttribute("data-position"));
    check(at === refused.error.details.position, `the mark is at ${at}, the API says ${refused.error.details.position}`);
    check((await query.getAttribute("aria-invalid")) === "true", "the refused query box is not marked invalid");
    await shot("search-error");
    await query.fill("refund");
    check(await until(3000, async () => (await shownError.count()) === 0), "the error stays once the query is edited");
    allowedFailures.pop();
    step(`"${bad}": "${refused.error.message}" shown, marked at character ${at}`);

    // Exports: every match, as a file.
    await run(word);
    await until(10_000, async () => Number(await attr('[data-testid="search-summary"]', "data-total")) === facets.total);
    const exported = async (format) => {
      const [download] = await Promise.all([
        page.waitForEvent("download", { timeout: 30_000 }),
        page.click(`[data-testid="search-export-${format}"]`),
      ]);
      check(download.suggestedFilename().endsWith(`.${format}`), `the ${format} export is named ${download.suggestedFilename()}`);
      return readFileSync(await download.path(), "utf8");
    };
    const csv = await exported("csv");
    const rows = csv.split("\r\n").filter(Boolean);
    check(rows[0].startsWith("id,created_at,platform,"), `the CSV header is ${rows[0]}`);
    check(rows.length - 1 === facets.total, `the CSV holds ${rows.length - 1} rows, the search ${facets.total} matches`);
    const lines = (await exported("jsonl")).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    check(lines.length === facets.total && lines.every((p) => typeof p.id === "string" && typeof p.text === "string"), `the JSON lines hold ${lines.length} posts`);
    step(`exports: CSV (${rows.length - 1} rows) and JSON lines (${lines.length} posts) of the ${facets.total} matches`);

    // The same export as a job: the server writes it, and its link works without a key.
    await page.click('[data-testid="search-export-job"]');
    const link = page.locator('[data-testid="search-export-link"]');
    await link.waitFor({ timeout: 60_000 }).catch(async () => {
      throw new Error(`the export job gave no link: ${await page.locator('[data-testid="search-export-job-status"]').textContent()}`);
    });
    const href = await link.getAttribute("href");
    const file = await fetch(new URL(href, page.url()));
    check(file.ok, `the job's link answers ${file.status}`);
    const jobRows = (await file.text()).split("\r\n").filter(Boolean);
    check(jobRows.length - 1 === facets.total, `the job's CSV holds ${jobRows.length - 1} rows, the search ${facets.total} matches`);
    step(`export job: a link without a key to the ${jobRows.length - 1} rows`);

    // Saved searches, when the server keeps them: saved, listed, run again, deleted.
    if (savedList.ok) {
      const name = `e2e search ${Date.now()}`;
      await page.click('[data-testid="search-save"]');
      await page.fill('[data-testid="save-search-name"]', name);
      await page.press('[data-testid="save-search-name"]', "Enter");
      const row = page.locator(`[data-testid="saved-search"][data-name="${name}"]`);
      await row.waitFor({ timeout: 10_000 }).catch(async () => {
        throw new Error(`the saved search is not listed: ${await page.locator('[data-testid="save-search-error"]').textContent().catch(() => "no error")}`);
      });
      const saved = (await api("/api/v1/saved-searches")).items.find((s) => s.name === name);
      check(saved && saved.query === word && saved.filters.order === "relevance", `the API holds ${JSON.stringify(saved)}`);
      await run("refund");
      // The typed search must have run before the saved one is clicked: on a loaded machine a
      // late Enter would otherwise land after the click and read as the saved search failing.
      const typed = await until(30_000, async () => new URL(page.url()).searchParams.get("q") === "refund" && (await query.inputValue()) === "refund");
      check(typed, `the typed search did not run: ${page.url()}`);
      await row.locator(".saved-run").click();
      const rerun = await until(30_000, async () => (await query.inputValue()) === word && new URL(page.url()).searchParams.get("q") === word && sameIds(await hitIds(), relevant.items));
      check(rerun, `running the saved search shows ${await query.inputValue()}`);
      await row.locator('[data-testid="saved-search-delete"]').click();
      await row.locator('[data-testid="saved-search-delete-confirm"]').click();
      await row.waitFor({ state: "detached", timeout: 10_000 });
      check(!(await api("/api/v1/saved-searches")).items.some((s) => s.name === name), "the deleted saved search is still in the API");
      step(`saved search "${name}": saved, run again, deleted`);
    } else {
      step(`saved searches: not checked, the server answers ${savedList.status} to GET /api/v1/saved-searches`);
    }

    // A topic made of the search lands in the topic selector.
    const topicName = `e2e search topic ${Date.now()}`;
    await page.click('[data-testid="search-make-topic"]');
    await page.fill('[data-testid="make-topic-name"]', topicName);
    check((await page.inputValue('[data-testid="make-topic-query"]')) === word, `the topic's query is ${await page.inputValue('[data-testid="make-topic-query"]')}`);
    await page.click('[data-testid="make-topic-save"]');
    const made = await page.waitForSelector('[data-testid="make-topic-done"]', { timeout: 10_000 }).catch(async () => {
      throw new Error(`the topic was not made: ${await page.locator('[data-testid="make-topic-error"]').textContent().catch(() => "no error")}`);
    });
    const topicId = await made.getAttribute("data-id");
    await page.waitForSelector(`[data-testid="filter-topic"] option[value="${topicId}"]`, { state: "attached", timeout: 10_000 });
    const topic = (await api("/api/v1/topics")).items.find((t) => String(t.id) === topicId);
    check(topic && topic.name === topicName && topic.query === word, `the API holds ${JSON.stringify(topic)}`);
    step(`make a topic: "${topicName}" (${word}) is in the topic selector`);

    // At a phone's width nothing runs off the side.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await until(3000, async () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1));
    await shot("search-mobile");
    check(overflow, `at 390 px the page is ${await page.evaluate(() => document.documentElement.scrollWidth)} px wide`);
    await page.setViewportSize({ width: 1440, height: 1600 });
    await page.click('[data-testid="view-dashboard"]');
    await page.waitForSelector('[data-panel="overall"] [data-testid="posts"]', { timeout: 10_000 });
    step("search at 390 px: no horizontal scrolling; back to the dashboard");
  }

  // Dark theme renders too (keyboard: the toggle is a button).
  await page.locator('button[aria-label^="Switch to"]').focus();
  await page.keyboard.press("Enter");
  await shot("theme-toggled");

  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join(" | ")}`);
  console.log("all dashboard checks passed");
  await browser.close();
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  await shot("failure").catch(() => {});
  await browser.close();
  process.exit(1);
}
