// The chat demo (`eddy serve --demo`, page /demo/) in headless Chromium.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { expect } from "./expect.mjs";
import {
  buildBinaries,
  launchBrowser,
  publish,
  screenshot,
  startEddy,
  startProxy,
  tempDir,
  watchErrors,
} from "./lib.mjs";

describe("chat demo", { timeout: 120_000 }, () => {
  let tmp, bins, eddy, browser;
  const contexts = [];
  let roomSeq = 0;
  const newRoom = () => `room${process.pid}x${++roomSeq}`;

  before(async () => {
    tmp = tempDir();
    bins = buildBinaries(tmp.dir);
    eddy = await startEddy({ bin: bins.eddy, dir: join(tmp.dir, "eddy") });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await eddy?.kill();
    tmp?.cleanup();
  });

  // Opens the demo in a fresh browser context (own storage) and joins room as name.
  async function joinAs(name, room, base = eddy.url, viewport = { width: 1000, height: 640 }) {
    const ctx = await browser.newContext({ viewport });
    contexts.push(ctx);
    const page = await ctx.newPage();
    page.errors = watchErrors(page);
    await page.goto(`${base}/demo/`);
    await page.fill("#name", name);
    await page.fill("#room", room);
    await page.click("#join button[type=submit]");
    await expect(page, "#status", (el) => el.dataset.state === "connected", `${name} connected`);
    return page;
  }

  const members = (page) => page.$$eval("#members li", (lis) => lis.map((li) => li.textContent));
  const texts = (page) => page.$$eval("#messages li.msg .text", (els) => els.map((e) => e.textContent));
  const waitText = (page, text, what) =>
    expect(page, "#messages", (el, t) => [...el.querySelectorAll("li.msg .text")].some((e) => e.textContent === t), what, text);
  const send = async (page, text) => {
    await page.fill("#text", text);
    await page.press("#text", "Enter");
  };

  test("two pages exchange messages, see each other, and profanity is filtered", async () => {
    const room = newRoom();
    const alice = await joinAs("alice", room);
    const bob = await joinAs("bob", room);
    await expect(alice, "#members", (el) => el.textContent.includes("bob"), "alice sees bob in the member list");
    assert.deepEqual(await members(bob), ["alice", "bob"]);
    assert.equal(await alice.textContent("#member-count"), "2");

    await send(alice, "hello bob");
    await waitText(bob, "hello bob", "bob receives alice's message");
    await send(bob, "what the heck is this");
    await waitText(alice, "what the *** is this", "alice receives bob's message filtered");
    await waitText(bob, "what the *** is this", "bob sees his own message filtered too");
    assert.ok(!(await texts(alice)).some((t) => t.includes("heck")), "the profane word never reaches a page");

    // Leaving updates the other page's member list live.
    await bob.click("#leave");
    await expect(alice, "#members", (el) => !el.textContent.includes("bob"), "bob leaves alice's member list");

    // A later joiner gets the history.
    const carol = await joinAs("carol", room);
    await waitText(carol, "hello bob", "carol sees history on join");
    await waitText(carol, "what the *** is this", "carol sees the filtered message in history");
    await send(carol, "hi all, darn glad to be here");
    await waitText(alice, "hi all, *** glad to be here", "alice receives carol's message");
    await alice.waitForTimeout(300); // let the list settle for the screenshot
    const shot = await screenshot(alice, "chat-demo");
    console.log(`screenshot: ${shot}`);
    assert.deepEqual([...alice.errors, ...carol.errors], []);
  });

  test("the demo fits a phone: no sideways scrolling, members and the send box visible", async () => {
    const room = newRoom();
    const phone = { width: 390, height: 844 };
    const dana = await joinAs("dana", room, eddy.url, phone);
    const eve = await joinAs("eve", room);
    await expect(dana, "#members", (el) => el.textContent.includes("eve"), "dana sees eve on a phone");
    await send(eve, "hello from a laptop");
    await waitText(dana, "hello from a laptop", "the phone receives the message");
    const widths = await dana.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      view: window.innerWidth,
    }));
    assert.ok(widths.page <= widths.view, `page is ${widths.page} px wide on a ${widths.view} px screen`);
    for (const sel of ["#members", "#text", "#send button", "#leave"]) {
      const box = await dana.locator(sel).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= phone.width && box.y + box.height <= phone.height, `${sel} is on screen: ${JSON.stringify(box)}`);
    }
    const shot = await screenshot(dana, "chat-demo-phone");
    console.log(`screenshot: ${shot}`);
    assert.deepEqual(dana.errors, []);
  });

  test("a rejected token shows an error banner, not a silent hang", async () => {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 480 } });
    contexts.push(ctx);
    const page = await ctx.newPage();
    // The demo endpoint always signs good tokens: hand the page one signed with another secret.
    await page.route("**/demo/token", (route) =>
      route.fulfill({
        contentType: "application/json",
        body: JSON.stringify({
          token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmVkLXdpdGgtYW5vdGhlci1zZWNyZXQtLS0tLS0",
        }),
      }),
    );
    await page.goto(`${eddy.url}/demo/`);
    await page.fill("#name", "mallory");
    await page.click("#join button[type=submit]");
    await expect(page, "#banner", (el) => !el.hidden, "the error banner appears");
    const banner = await page.textContent("#banner-text");
    assert.match(banner, /rejected the token/);
    assert.equal(await page.getAttribute("#status", "data-state"), "rejected");
    const shot = await screenshot(page, "chat-demo-bad-token");
    console.log(`screenshot: ${shot}`);
  });

  test("a cut connection reconnects by itself and recovers the missed messages", async () => {
    // The page loads through a proxy, so its WebSocket can be cut without restarting eddy.
    const proxy = await startProxy(eddy.port);
    try {
      const room = newRoom();
      const dave = await joinAs("dave", room, proxy.url);
      await send(dave, "before the cut");
      await waitText(dave, "before the cut", "dave's own message arrives");
      const loadsBefore = await dave.evaluate(() => window.chatDemo.stats.historyLoads);

      proxy.cut();
      await expect(dave, "#status", (el) => el.dataset.state === "reconnecting", "the page notices the cut");
      await publish(eddy.url, `chat:${room}`, "msg", { text: "missed one" });
      await publish(eddy.url, `chat:${room}`, "msg", { text: "missed two" });
      proxy.resume();

      await expect(dave, "#status", (el) => el.dataset.state === "connected", "the page reconnects by itself");
      await waitText(dave, "missed one", "missed message 1 recovered");
      await waitText(dave, "missed two", "missed message 2 recovered");
      const stats = await dave.evaluate(() => window.chatDemo.stats);
      assert.equal(stats.recoveries, 1, "the resubscribe was recovered: true");
      assert.equal(stats.historyLoads, loadsBefore, "no history reload was needed");
      assert.deepEqual(await texts(dave), ["before the cut", "missed one", "missed two"]);
    } finally {
      await proxy.close();
    }
  });

  test("after an eddy restart the page reconnects, reloads and gets new messages", async () => {
    const room = newRoom();
    const erin = await joinAs("erin", room);
    await send(erin, "before the restart");
    await waitText(erin, "before the restart", "erin's message arrives");
    const loadsBefore = await erin.evaluate(() => window.chatDemo.stats.historyLoads);

    await eddy.kill("SIGKILL");
    await expect(erin, "#status", (el) => el.dataset.state === "reconnecting", "the page notices the server is gone");
    eddy = await startEddy({ bin: bins.eddy, dir: join(tmp.dir, "eddy"), port: eddy.port });

    await expect(erin, "#status", (el) => el.dataset.state === "connected", "the page reconnects by itself", undefined, 20_000);
    // The in-memory broker lost the stream (a new epoch): the page cannot
    // recover and reloads what the server keeps instead.
    await expect(erin, "body", () => window.chatDemo.stats.historyLoads > 0, "history reloaded");
    const stats = await erin.evaluate(() => window.chatDemo.stats);
    assert.equal(stats.recoveries, 0);
    assert.equal(stats.historyLoads, loadsBefore + 1);
    await publish(eddy.url, `chat:${room}`, "msg", { text: "after the restart" });
    await waitText(erin, "after the restart", "a message published after the restart arrives");
    await expect(erin, "#members", (el) => el.textContent.includes("erin"), "erin is a member again");
    const shot = await screenshot(erin, "chat-demo-after-restart");
    console.log(`screenshot: ${shot}`);
  });
});
