// The web admin console (`/admin`) in headless Chromium, against a real
// eddy with an admin key: sign-in, live figures, channels, connections
// (disconnecting a user closes its client), functions (a syntax error shown
// at its line, deploy, invoke), associations, a wrong key refused, and the
// operator key: it signs in too, and its Apps page creates and lists apps.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "./expect.mjs";
import { API_KEY, SECRET, buildBinaries, launchBrowser, publish, screenshot, startEddy, tempDir, watchErrors } from "./lib.mjs";

const ADMIN_KEY = "e2e-console-admin-key";
const OPERATOR_KEY = "eop_e2e-console-operator-key";

describe("admin console", { timeout: 180_000 }, () => {
  let tmp, eddy, browser, ctx, page, chatPage;

  before(async () => {
    tmp = tempDir();
    const bins = buildBinaries(tmp.dir);
    const dir = join(tmp.dir, "eddy");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "eddy.yaml"), [
      `secret: "${SECRET}"`,
      `api_key: "${API_KEY}"`,
      `admin_key: "${ADMIN_KEY}"`,
      `operator_key: "${OPERATOR_KEY}"`,
      `data_dir: "${join(dir, "data")}"`,
      "namespaces:",
      "  chat: { history_size: 100, history_ttl: 10m, presence: true, join_leave: true }",
      "",
    ].join("\n"));
    eddy = await startEddy({ bin: bins.eddy, dir });
    browser = await launchBrowser();
    // bypassCSP: the test's own waits evaluate code in the page, which the
    // console's Content-Security-Policy (no eval) would refuse.
    ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, bypassCSP: true });
    page = await ctx.newPage();
    page.errors = watchErrors(page);
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    await browser?.close();
    await eddy?.kill();
    tmp?.cleanup();
  });

  test("a wrong key is refused and nothing is kept", async () => {
    await page.goto(`${eddy.url}/admin/`);
    await page.fill("#key", API_KEY); // the API key does not open the admin API
    await page.click("#signin-form button[type=submit]");
    await expect(page, "#signin-error", (el) => !el.hidden && /wrong/i.test(el.textContent), "the refusal is shown");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("eddy.adminKey")), null);
    assert.equal(await page.isHidden("#app"), true);
    await screenshot(page, "console-signin-refused");
  });

  test("sign in, see the node and the test's connection, watch the rate rise", async () => {
    // A chat user made by the test: the demo page, in its own context.
    const chatCtx = await browser.newContext({ viewport: { width: 900, height: 600 } });
    chatPage = await chatCtx.newPage();
    await chatPage.goto(`${eddy.url}/demo/`);
    await chatPage.fill("#name", "mallory");
    await chatPage.fill("#room", "lobby");
    await chatPage.click("#join button[type=submit]");
    await expect(chatPage, "#status", (el) => el.dataset.state === "connected", "chat page connected");

    await page.fill("#key", ADMIN_KEY);
    await page.click("#signin-form button[type=submit]");
    await expect(page, "#live", (el) => el.classList.contains("on"), "the stats stream is live");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("eddy.adminKey")), ADMIN_KEY);
    assert.equal(await page.evaluate(() => localStorage.length), 0, "the key is in the session only");
    await expect(page, "#nodes-table tbody tr", (el) => el.children.length === 7 && /this node/.test(el.textContent), "the node is listed");
    await expect(page, "#t-conns", (el) => Number(el.textContent) >= 1, "the chat page's connection is counted");

    // Publish for a while; the live rate must rise above zero.
    let stop = false;
    const publisher = (async () => {
      for (let i = 0; !stop && i < 400; i++) {
        await publish(eddy.url, "chat:lobby", "message", { text: `load ${i}`, user: "bot" });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await expect(page, "#t-in", (el) => Number(el.textContent.replace(/,/g, "")) > 0, "messages in per second rises", undefined, 15_000);
      await expect(page, "#busiest-table tbody", (el) => /chat:lobby/.test(el.textContent), "the busy channel is listed", undefined, 15_000);
      // A few seconds of the rate on the chart, for the screenshot.
      await expect(page, "#chart-rate", () => state.points.filter((p) => p.messages_in_per_s > 0).length >= 6, "six seconds of traffic charted", undefined, 20_000);
      await screenshot(page, "console-overview");
    } finally {
      stop = true;
      await publisher;
    }
  });

  test("channels: search, presence, history, publish a test message", async () => {
    await page.click("nav a[data-page=channels]");
    await page.fill("#ch-prefix", "chat:");
    await page.click("#ch-search button[type=submit]");
    await expect(page, "#channels-table tbody", (el) => /chat:lobby/.test(el.textContent), "chat:lobby found by prefix");
    await page.click('#channels-table tr[data-channel="chat:lobby"]');
    await expect(page, "#ch-members", (el) => /mallory/.test(el.textContent), "mallory is present");
    await expect(page, "#ch-history", (el) => /load \d+/.test(el.textContent), "the last messages are shown");
    await page.fill("#ch-event", "msg"); // the event the chat demo shows
    await page.fill("#ch-data", '{"text":"from the console","user":"admin"}');
    await page.click("#ch-publish button[type=submit]");
    await expect(page, "#ch-publish-result", (el) => /offset \d+/.test(el.textContent), "published");
    await expect(chatPage, "#messages", (el) => /from the console/.test(el.textContent), "the chat page got the test message");
    await screenshot(page, "console-channels");
  });

  test("functions: a syntax error at its line, then deploy, invoke", async () => {
    await page.click("nav a[data-page=functions]");
    await page.click("#fn-new");
    await page.fill("#fn-name", "shout");
    await page.fill("#fn-source", "function handle(message, ctx) {\n  var x = ;\n  return message;\n}\n");
    await page.click("#fn-form button[type=submit]");
    await expect(page, "#fn-error", (el) => !el.hidden && el.dataset.line === "2" && /Line 2/.test(el.textContent), "the syntax error names line 2");
    await expect(page, "#fn-gutter .bad", (el) => el.textContent === "2", "the gutter marks line 2");
    await screenshot(page, "console-functions-error");

    await page.fill("#fn-source", 'function handle(message, ctx) {\n  ctx.log("shouting", message.event);\n  message.data.text = String(message.data.text).toUpperCase();\n  return message;\n}\n');
    await page.click("#fn-form button[type=submit]");
    await expect(page, "#fn-deployed", (el) => /Deployed/.test(el.textContent), "deployed");
    await expect(page, "#fns-table tbody", (el) => /shout/.test(el.textContent), "listed");
    await page.fill("#inv-data", '{"text":"hello"}');
    await page.click("#fn-invoke button[type=submit]");
    await expect(page, "#inv-result", (el) => el.dataset.action === "pass" && /HELLO/.test(el.textContent), "the invoke result is shown");
    await screenshot(page, "console-functions");
  });

  test("associations: add one and see it listed", async () => {
    await page.click("nav a[data-page=associations]");
    await page.fill("#as-pattern", "shout:*");
    await page.fill("#as-functions", "shout");
    await page.click("#assoc-form button[type=submit]");
    await expect(page, "#assoc-table tbody", (el) => /shout:\*/.test(el.textContent), "the association is listed");
    await screenshot(page, "console-associations");
  });

  test("connections: find the user, disconnect it, its client is closed", async () => {
    await chatPage.evaluate(() => {
      window.__states = [];
      const st = document.querySelector("#status");
      new MutationObserver(() => window.__states.push(st.dataset.state)).observe(st, { attributes: true });
    });
    await page.click("nav a[data-page=connections]");
    await page.fill("#conn-user", "mallory");
    await page.click("#conn-search button[type=submit]");
    await expect(page, "#conns-table tbody", (el) => /mallory/.test(el.textContent) && /chat:lobby/.test(el.textContent), "mallory's connection and channel");
    await screenshot(page, "console-connections");
    await page.click('#conns-table tr[data-user="mallory"] button');
    await page.fill("#disc-reason", "spamming the lobby");
    await page.click("#disc-form button[type=submit]");
    await expect(page, "#conn-total", (el) => /Disconnected 1 connection of mallory/.test(el.textContent), "one connection closed");
    await expect(chatPage, "#status", () => window.__states.some((s) => s !== "connected"), "the chat client saw its connection closed");
  });

  test("apps page: the admin key is told the apps API takes the operator key, and stays signed in", async () => {
    await page.click("nav a[data-page=apps]");
    await expect(page, "#apps-note", (el) => /operator key/.test(el.textContent), "the apps page says which key it needs");
    assert.equal(await page.isHidden("#app-create"), true);
    assert.equal(await page.isVisible("#app"), true, "still signed in");
    // Refused calls (the wrong key, the apps API) log "Failed to load resource"; nothing else may.
    assert.deepEqual(page.errors.filter((e) => !/Failed to load resource/.test(e)), []);
  });

  test("operator key: sign in, create an app on the Apps page, see it listed", async () => {
    await page.click("#signout");
    await page.fill("#key", OPERATOR_KEY);
    await page.click("#signin-form button[type=submit]");
    await expect(page, "#live", (el) => el.classList.contains("on"), "signed in with the operator key, the stats stream is live");
    await page.click("nav a[data-page=apps]");
    await expect(page, "#apps-table tbody", (el) => /no apps yet/.test(el.textContent), "no apps yet");
    await page.fill("#app-id", "shop");
    await page.fill("#app-name", "The shop");
    await page.click("#app-form button[type=submit]");
    await expect(page, '#apps-table tr[data-app="shop"]', (el) => /The shop/.test(el.textContent) && /ek_/.test(el.textContent), "the new app is listed with its masked API key");
    await expect(page, "#app-keys", (el) => /API key: ek_/.test(el.textContent) && /Pusher app id shop/.test(el.textContent), "its keys are shown once");
    await screenshot(page, "console-apps");
    // The app is real: the apps API has it, and its own API key publishes.
    const keys = await (await fetch(`${eddy.url}/api/v1/apps/shop/keys`, { headers: { Authorization: `Bearer ${OPERATOR_KEY}` } })).json();
    const shown = await page.textContent("#app-keys");
    assert.ok(shown.includes(keys.api_keys[0].key), "the key shown is the app's key");
    const res = await fetch(`${eddy.url}/api/v1/publish`, { method: "POST", headers: { Authorization: `Bearer ${keys.api_keys[0].key}`, "Content-Type": "application/json" }, body: JSON.stringify({ channel: "chat:lobby", event: "e", data: 1 }) });
    assert.equal(res.status, 200, "the new app's API key publishes");
    // A taken id is refused with the server's message.
    await page.fill("#app-id", "shop");
    await page.click("#app-form button[type=submit]");
    await expect(page, "#app-error", (el) => !el.hidden && /exist/i.test(el.textContent), "a taken id is refused by name");
    assert.deepEqual(page.errors.filter((e) => !/Failed to load resource/.test(e)), []);
  });
});
