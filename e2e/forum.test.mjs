// The forum example (examples/forum) with live updates through eddy, in headless Chromium.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { expect } from "./expect.mjs";
import { buildBinaries, launchBrowser, screenshot, startEddy, startForum, tempDir, watchErrors } from "./lib.mjs";

describe("forum example", { timeout: 120_000 }, () => {
  let tmp, eddy, forum, browser;

  before(async () => {
    tmp = tempDir();
    const bins = buildBinaries(tmp.dir);
    eddy = await startEddy({ bin: bins.eddy, dir: join(tmp.dir, "eddy") });
    forum = await startForum({ bin: bins.forum, eddyURL: eddy.url, dir: tmp.dir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await forum?.kill();
    await eddy?.kill();
    tmp?.cleanup();
  });

  async function logIn(name, topic) {
    const ctx = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await ctx.newPage();
    page.errors = watchErrors(page);
    await page.goto(`${forum.url}/t/${topic}`);
    await page.fill("#name", name);
    await page.click("form.login button[type=submit]");
    await page.waitForURL(`${forum.url}/t/${topic}`);
    await expect(page, "#live", (el) => el.dataset.state === "live", `${name}'s page is live`);
    return page;
  }

  const postTexts = (page) => page.$$eval("#posts li.post .text", (els) => els.map((e) => e.textContent));

  test("a post made in one page appears in the other without a reload", async () => {
    const ann = await logIn("ann", "dogs");
    const ben = await logIn("ben", "dogs");
    // A marker that a reload would wipe.
    await ben.evaluate(() => (window.notReloaded = true));

    await ann.fill("#text", "Who else walks their dog at 6am?");
    await ann.click("#new-post button[type=submit]");
    await expect(ben, "#posts", (el) => el.textContent.includes("Who else walks their dog at 6am?"), "ben sees ann's post live");
    assert.equal(await ben.evaluate(() => window.notReloaded), true, "ben's page was not reloaded");
    assert.equal(await ben.evaluate(() => window.forum.stats.received), 1);

    await ben.fill("#text", "Me! Rain or shine.");
    await ben.click("#new-post button[type=submit]");
    await expect(ann, "#posts", (el) => el.textContent.includes("Rain or shine."), "ann sees ben's reply live");
    // Each page shows each post once (its own from the POST answer and from eddy).
    assert.deepEqual(await postTexts(ann), ["Who else walks their dog at 6am?", "Me! Rain or shine."]);
    assert.deepEqual(await postTexts(ben), ["Who else walks their dog at 6am?", "Me! Rain or shine."]);

    // The posts are the forum's: a fresh load shows them too.
    await ben.reload();
    assert.deepEqual(await postTexts(ben), ["Who else walks their dog at 6am?", "Me! Rain or shine."]);
    await ann.waitForTimeout(1300); // let the "fresh post" highlight fade
    const shot = await screenshot(ann, "forum-topic");
    console.log(`screenshot: ${shot}`);
    await ann.goto(`${forum.url}/`);
    console.log(`screenshot: ${await screenshot(ann, "forum-home")}`);
    assert.deepEqual([...ann.errors, ...ben.errors], []);
  });

  test("a rejected eddy token shows an error on the topic page", async () => {
    const ctx = await browser.newContext({ viewport: { width: 900, height: 400 } });
    const page = await ctx.newPage();
    await page.route("**/eddy-token", (route) =>
      route.fulfill({ contentType: "application/json", body: JSON.stringify({ token: "not-a-jwt" }) }),
    );
    await page.goto(`${forum.url}/t/general`);
    await page.fill("#name", "zed");
    await page.click("form.login button[type=submit]");
    await expect(page, "#banner", (el) => !el.hidden, "the error banner appears");
    assert.match(await page.textContent("#banner"), /Live updates are off/);
    assert.equal(await page.getAttribute("#live", "data-state"), "off");
  });
});
