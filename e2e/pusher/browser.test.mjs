// pusher-js from npm in Debian's Chromium (playwright-core, never a
// downloaded browser): a page served by this test loads pusher-js from
// node_modules and authorises through a real HTTP endpoint built with the
// SDK's authorizeChannel, which pusher-js calls with its own XHR.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import { tempDir, buildEddy, startEddy, sdk, eventually, KEY } from "./lib.mjs";

const require = createRequire(import.meta.url);
const PUSHER_JS = readFileSync(require.resolve("pusher-js/dist/web/pusher.min.js"));
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

let tmp, eddy, server, site, browser;
before(async () => {
  tmp = tempDir();
  eddy = await startEddy({ bin: buildEddy(tmp.dir), dir: tmp.dir });
  server = sdk(eddy);
  site = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/pusher.min.js") {
      res.setHeader("Content-Type", "text/javascript");
      return res.end(PUSHER_JS);
    }
    if (url.pathname === "/pusher/auth" && req.method === "POST") {
      let body = "";
      req.on("data", (d) => (body += d));
      return req.on("end", () => {
        const p = new URLSearchParams(body);
        const user = url.searchParams.get("user");
        const auth = server.authorizeChannel(p.get("socket_id"), p.get("channel_name"), { user_id: user, user_info: { name: user.toUpperCase() } });
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify(auth));
      });
    }
    if (url.pathname === "/") {
      res.setHeader("Content-Type", "text/html");
      return res.end(page(url.searchParams.get("user")));
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise((r) => site.listen(0, "127.0.0.1", r));
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
});
after(async () => {
  await browser?.close();
  site?.close();
  await eddy?.kill();
  tmp?.cleanup();
});

function page(user) {
  return `<!doctype html><meta charset="utf-8"><title>pusher-js on eddy</title>
<script src="/pusher.min.js"></script>
<ul id="members"></ul>
<script>
  window.log = [];
  const pusher = new Pusher(${JSON.stringify(KEY)}, {
    cluster: "eddy", wsHost: "127.0.0.1", wsPort: ${eddy.port}, forceTLS: false,
    enabledTransports: ["ws"], disableStats: true,
    channelAuthorization: { endpoint: "/pusher/auth?user=${encodeURIComponent(user)}", transport: "ajax" },
  });
  const room = pusher.subscribe("presence-browser");
  const render = () => {
    const ids = []; room.members.each((m) => ids.push(m.id));
    window.members = ids.sort();
    document.getElementById("members").innerHTML = window.members.map((id) => "<li>" + id + "</li>").join("");
  };
  room.bind("pusher:subscription_succeeded", () => { window.subscribed = true; render(); });
  room.bind("pusher:member_added", (m) => { log.push(["added", m.id]); render(); });
  room.bind("pusher:member_removed", (m) => { log.push(["removed", m.id]); render(); });
  room.bind("news", (d) => log.push(["news", d]));
</script>`;
}

async function open(user) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(e.message));
  await p.goto(`http://127.0.0.1:${site.address().port}/?user=${user}`);
  await p.waitForFunction(() => window.subscribed === true, null, { timeout: 15_000 });
  return { ctx, page: p, errors };
}

test("pusher-js in Chromium: presence members as tabs open and close, events", async () => {
  const ann = await open("ann");
  assert.deepEqual(await ann.page.evaluate(() => window.members), ["ann"]);
  const bob1 = await open("bob");
  assert.deepEqual(await bob1.page.evaluate(() => window.members), ["ann", "bob"]);
  await ann.page.waitForFunction(() => window.members.join() === "ann,bob");
  const bob2 = await open("bob"); // a second tab of bob: still one member
  assert.deepEqual(await bob2.page.evaluate(() => window.members), ["ann", "bob"]);

  await server.trigger("presence-browser", "news", { text: "hello browsers" });
  for (const t of [ann, bob1, bob2]) {
    await t.page.waitForFunction(() => window.log.some(([e, d]) => e === "news" && d.text === "hello browsers"));
  }
  await bob1.ctx.close();
  // Wait until eddy has seen the tab go (its subscription count drops)...
  await eventually("bob's first tab gone", async () => (await (await server.get({ path: "/channels/presence-browser", params: { info: "subscription_count" } })).json()).subscription_count === 2);
  // ...and prove with a later event that member_removed did not come before it.
  await server.trigger("presence-browser", "news", { text: "after one tab" });
  await ann.page.waitForFunction(() => window.log.some(([e, d]) => e === "news" && d.text === "after one tab"));
  assert.deepEqual(await ann.page.evaluate(() => window.members), ["ann", "bob"]);
  await bob2.ctx.close();
  await ann.page.waitForFunction(() => window.members.join() === "ann");
  const log = await ann.page.evaluate(() => window.log.filter(([e]) => e !== "news"));
  assert.deepEqual(log, [["added", "bob"], ["removed", "bob"]]);
  assert.equal(await ann.page.textContent("#members"), "ann");
  assert.deepEqual(ann.errors, []);
  await ann.ctx.close();
});
