// End-to-end test of signing in to the dashboard, in headless Chromium against a running Pulse
// with authentication (token mode) and two API keys: one with the analyst (or editor, or admin) role and
// one with the ingest role, which also feeds the posts the test watches arrive.
//
//   node e2e/auth.mjs http://127.0.0.1:8080 --api-key pulse_… --ingest-key pulse_… [--out DIR]
//
// Checks that the sign-in screen comes first, that a wrong key and the ingest key are refused
// with their messages, that the analyst key signs in (bearer header on every REST call, token
// on the WebSocket) and the panels render with live posts arriving, that a reload stays signed
// in, that sign-out returns to the sign-in screen and forgets the key, and that nothing breaks
// the server's Content-Security-Policy or logs an error. On a server whose tokens live at most
// two minutes it also waits for a renewal and the WebSocket's reconnection after the server
// closes the expired session (4001). Screenshots go to DIR (default e2e-output/). Exits 0 and
// prints "all auth checks passed" when everything holds.
import { launch } from "./browser.mjs";
import { PANELS, check, cli, screenshots, step, until, waitForPanels } from "./harness.mjs";

const usage = "auth.mjs BASE_URL --api-key KEY --ingest-key KEY2 [--out DIR]";
const { base, opt, out } = cli(usage);
const apiKey = opt("--api-key");
const ingestKey = opt("--ingest-key");
if (!apiKey || !ingestKey) {
  console.error(`usage: ${usage}`);
  process.exit(2);
}

/** A token for `key`, straight from the API. */
async function exchange(key) {
  const res = await fetch(`${base}/api/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: key }),
  });
  if (!res.ok) throw new Error(`POST /api/v1/auth/token: ${res.status} ${await res.text()}`);
  return res.json();
}

// The server: token mode, a CSP on the page, the keys' roles.
const status = await (await fetch(`${base}/api/v1/auth/status`)).json();
check(status.mode === "token", `the server must run with authentication; /api/v1/auth/status says ${JSON.stringify(status)}`);
const csp = (await fetch(`${base}/`)).headers.get("content-security-policy") ?? "";
check(/script-src 'self'/.test(csp), `the page is served without a strict Content-Security-Policy: ${JSON.stringify(csp)}`);
const ingest = await exchange(ingestKey);
check(ingest.role === "ingest", `--ingest-key has the ${ingest.role} role, not ingest`);
const analystRole = (await exchange(apiKey)).role;
check(["analyst", "editor", "admin"].includes(analystRole), `--api-key has the ${analystRole} role, not analyst, editor or admin`);
check((await fetch(`${base}/api/v1/metrics/overall`)).status === 401, "the REST API answers without a token");

let ingestToken = ingest;
/** POSTs events with the ingest key's token, exchanging it again when it expired. */
async function postEvents(events) {
  if (Date.parse(ingestToken.expires_at) - Date.now() < 10_000) ingestToken = await exchange(ingestKey);
  const res = await fetch(`${base}/api/v1/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ingestToken.access_token}` },
    body: JSON.stringify(events),
  });
  if (!res.ok) throw new Error(`POST /api/v1/events: ${res.status} ${await res.text()}`);
}
const places = [["Lyon", "FR"], ["Austin", "US"], ["Osaka", "JP"]];
const post = (id, i = 0) => ({
  type: "post", id, platform: ["twitter", "reddit", "bluesky"][i % 3], author: { id: `auth-e2e-${i % 5}`, followers: 10 + i },
  text: ["Signed in and the live stream works, lovely", "The new release is fine I guess", "Support was slow today, not happy"][i % 3],
  created_at: new Date().toISOString(), product: ["pulse-phone", "pulse-cloud"][i % 2], channel: ["organic", "support"][i % 2],
  geo: { city: places[i % 3][0], country: places[i % 3][1] }, metrics: { likes: i, shares: 0 },
});

const browser = await launch();
const page = browser.context.pages()[0] ?? (await browser.context.newPage());

// Errors and CSP violations, from the page's own event and from the console.
const pageErrors = [];
const violations = [];
let allowed = null; // { status, path }: the failed request the current step provokes on purpose
await browser.context.exposeBinding("__pulseCspViolation", (_source, v) => violations.push(v));
await browser.context.addInitScript(() => {
  document.addEventListener("securitypolicyviolation", (e) =>
    window.__pulseCspViolation({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample }),
  );
});
page.on("pageerror", (e) => pageErrors.push(e.message));
page.on("console", (m) => {
  const text = m.text();
  if (/Content[- ]Security[- ]Policy/i.test(text)) violations.push({ console: text });
  if (m.type() !== "error") return;
  const url = m.location().url ?? "";
  if (allowed && text.includes(`status of ${allowed.status}`) && url.endsWith(allowed.path)) return;
  pageErrors.push(`${text} (${url})`);
});

// Every API request the page makes, with its credentials; every WebSocket it opens.
const requests = [];
page.on("request", (r) => {
  const url = new URL(r.url());
  if (url.pathname.startsWith("/api/")) requests.push({ path: url.pathname, method: r.method(), auth: r.headers().authorization });
});
const sockets = [];
page.on("websocket", (ws) => sockets.push(new URL(ws.url()).searchParams.get("access_token")));

const shot = screenshots(page, out);
const text = async (sel) => (await page.locator(sel).first().textContent())?.trim();
const stored = () => page.evaluate(() => ({ session: { ...sessionStorage }, local: { ...localStorage } }));
const signIn = async (key) => {
  await page.fill('[data-testid="api-key-input"]', key);
  await page.click('[data-testid="sign-in-submit"]');
};
/** Posts one event and waits for it in the live stream. */
async function livePost(label) {
  const id = `auth-e2e-${label}-${Date.now()}`;
  await postEvents([post(id)]);
  const t0 = Date.now();
  await page.waitForSelector(`[data-testid="post"][data-id="${id}"]`, { timeout: 5000 }).catch(() => {
    throw new Error(`${label}: post ${id} did not arrive over the WebSocket within 5 s`);
  });
  return Date.now() - t0;
}

try {
  // 1. The sign-in screen comes first, with a password field, and nothing of the dashboard.
  await page.goto(`${base}/?window=1h`);
  await page.waitForSelector('[data-testid="sign-in"]', { timeout: 15_000 });
  check((await page.getAttribute('[data-testid="api-key-input"]', "type")) === "password", "the key field is not a password field");
  check((await page.locator('[data-panel], [data-testid="open-mode-banner"]').count()) === 0, "the dashboard or the open-mode banner shows before signing in");
  check(sockets.length === 0, "a WebSocket was opened before signing in");
  await shot("auth-sign-in");
  step("the sign-in screen comes first");

  // 2. A wrong key: the server's 401, inline.
  allowed = { status: 401, path: "/api/v1/auth/token" };
  await signIn(`pulse_wrong${Date.now()}`);
  await page.waitForSelector('[data-testid="sign-in-error"]:has-text("Invalid API key")', { timeout: 5000 }).catch(async () => {
    throw new Error(`a wrong key did not say "Invalid API key": ${await text('[data-testid="sign-in-error"]').catch(() => "no error shown")}`);
  });
  allowed = null;
  check(Object.keys((await stored()).session).length === 0, "a refused key was kept");
  await shot("auth-invalid-key");
  step(`a wrong key is refused: "${await text('[data-testid="sign-in-error"]')}"`);

  // 3. The ingest key: the exchange succeeds, the role cannot read the dashboard.
  await signIn(ingestKey);
  await page.waitForSelector('[data-testid="sign-in-error"]:has-text("role cannot read the dashboard")', { timeout: 5000 }).catch(async () => {
    throw new Error(`the ingest key was not refused for its role: ${await text('[data-testid="sign-in-error"]').catch(() => "no error shown")}`);
  });
  check((await page.locator("[data-panel]").count()) === 0, "the ingest key got to the dashboard");
  check(Object.keys((await stored()).session).length === 0, "the ingest key was kept");
  check(sockets.length === 0, "the ingest key opened a WebSocket");
  await shot("auth-ingest-key");
  step(`the ingest key is refused: "${await text('[data-testid="sign-in-error"]')}"`);

  // 4. The analyst key signs in: role in the header, panels with data, live posts.
  const batch = Array.from({ length: 12 }, (_, i) => post(`auth-e2e-seed-${Date.now()}-${i}`, i));
  await postEvents(batch);
  requests.length = 0;
  await signIn(apiKey);
  await page.waitForSelector('[data-testid="role"]', { timeout: 10_000 });
  const role = await page.getAttribute('[data-testid="role"]', "data-role");
  check(role === analystRole, `the header shows role ${role}, the key has ${analystRole}`);
  await waitForPanels(page, PANELS, 20_000);
  await page.waitForSelector('[data-testid="connection"][data-status="open"]', { timeout: 10_000 });
  const ms = [];
  for (let i = 0; i < 3; i++) ms.push(await livePost(`live${i}`));
  const api = requests.filter((r) => !r.path.startsWith("/api/v1/auth/"));
  check(api.length > 0, "the dashboard made no REST calls");
  const bare = api.filter((r) => !/^Bearer \S+$/.test(r.auth ?? ""));
  check(bare.length === 0, `REST calls without a bearer token: ${bare.map((r) => r.path).join(", ")}`);
  check(sockets.length >= 1 && sockets.every(Boolean), "the WebSocket URL carries no access_token");
  const kept = await stored();
  check(kept.session["pulse-api-key"] === apiKey, "the API key is not in sessionStorage");
  const everywhere = JSON.stringify(kept);
  check(!sockets.some((t) => everywhere.includes(t)), "an access token was written to storage");
  check(!JSON.stringify(kept.local).includes(apiKey), "the API key was written to localStorage");
  await shot("auth-signed-in");
  step(`the ${role} key signs in: ${Object.keys(PANELS).length} panels render, ${api.length} REST calls all with a bearer token, live posts in ${ms.join(", ")} ms`);

  // 5. A reload signs in again with the key this tab kept.
  const exchangesBefore = requests.filter((r) => r.path === "/api/v1/auth/token").length;
  const socketsBefore = sockets.length;
  await page.reload();
  await page.waitForSelector('[data-testid="role"]', { timeout: 10_000 });
  check((await page.locator('[data-testid="sign-in"]').count()) === 0, "a reload shows the sign-in screen");
  check(requests.filter((r) => r.path === "/api/v1/auth/token").length === exchangesBefore + 1, "a reload did not exchange the kept key once");
  await page.waitForSelector('[data-testid="connection"][data-status="open"]', { timeout: 10_000 });
  check(sockets.length > socketsBefore, "no WebSocket after the reload");
  step(`a reload stays signed in; live post in ${await livePost("reload")} ms`);

  // 6. Short-lived tokens: renewed before expiry; the expired WebSocket session reconnects.
  if (status.token_ttl_secs <= 120) {
    const ttl = status.token_ttl_secs;
    const tokenBefore = sockets.at(-1);
    const exchanges = () => requests.filter((r) => r.path === "/api/v1/auth/token").length;
    const renewals = exchanges();
    const renewed = await until((ttl + 5) * 1000, async () => exchanges() > renewals, 500);
    check(renewed, `no renewal within ${ttl + 5} s of a ${ttl} s token`);
    const reconnected = await until((ttl + 15) * 1000, async () => sockets.at(-1) !== tokenBefore, 500);
    check(reconnected, "the WebSocket did not reconnect with a new token after its token expired");
    await page.waitForSelector('[data-testid="connection"][data-status="open"]', { timeout: 10_000 });
    check((await page.locator('[data-testid="sign-in"]').count()) === 0, "the renewal ended on the sign-in screen");
    step(`${ttl} s tokens: renewed, the WebSocket reconnected with the new token; live post in ${await livePost("renewed")} ms`);
  } else {
    step(`tokens live ${status.token_ttl_secs} s: renewal not waited for (it is exercised below 120 s)`);
  }

  // 7. Sign out: the sign-in screen, the key forgotten, a reload does not sign in.
  await page.click('[data-testid="sign-out"]');
  await page.waitForSelector('[data-testid="sign-in"]', { timeout: 5000 });
  check((await page.locator("[data-panel]").count()) === 0, "the dashboard is still shown after signing out");
  check(Object.keys((await stored()).session).length === 0, "sign-out left the key in sessionStorage");
  await page.reload();
  await page.waitForSelector('[data-testid="sign-in"]', { timeout: 10_000 });
  await shot("auth-signed-out");
  step("sign-out returns to the sign-in screen and forgets the key, across a reload");

  check(violations.length === 0, `Content-Security-Policy violations: ${JSON.stringify(violations)}`);
  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join(" | ")}`);
  step("no Content-Security-Policy violation and no error in the page");
  console.log("all auth checks passed");
  await browser.close();
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  if (violations.length) console.error(`CSP violations: ${JSON.stringify(violations)}`);
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join(" | ")}`);
  await shot("auth-failure").catch(() => {});
  await browser.close();
  process.exit(1);
}
