// The React example (examples/react, built with eddy-client/react) in
// headless Chromium against a real server: the member list follows pages
// joining and leaving, and messages reach every page.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createHmac } from "node:crypto";
import { expect } from "./expect.mjs";
import { SECRET, buildBinaries, launchBrowser, repoRoot, screenshot, startEddy, tempDir, watchErrors } from "./lib.mjs";

const jsDir = join(repoRoot, "clients", "js");
const exampleDir = join(repoRoot, "examples", "react");

// An HS256 token, signed here as the application's backend would.
function token(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600, channels: ["chat:*"], publish: ["chat:*"] })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}

// Bundles the example with the esbuild, React and built client of clients/js,
// so the page and eddy-client/react share one copy of React.
async function buildExample() {
  const { build } = createRequire(join(jsDir, "package.json"))("esbuild");
  const out = await build({
    entryPoints: [join(exampleDir, "app.tsx")],
    bundle: true,
    write: false,
    format: "iife",
    target: "es2020",
    jsx: "automatic",
    define: { "process.env.NODE_ENV": '"production"' },
    nodePaths: [join(jsDir, "node_modules")],
    alias: { "eddy-client/react": join(jsDir, "dist", "react.js"), "eddy-client": join(jsDir, "dist", "index.js") },
    logLevel: "warning",
  });
  return out.outputFiles[0].text;
}

describe("React example", { timeout: 120_000 }, () => {
  let tmp, eddy, browser, site, siteURL;
  const contexts = [];

  before(async () => {
    tmp = tempDir();
    const bins = buildBinaries(tmp.dir);
    eddy = await startEddy({ bin: bins.eddy, dir: join(tmp.dir, "eddy") });
    const appJS = await buildExample();
    const html = readFileSync(join(exampleDir, "index.html"));
    site = createServer((req, res) => {
      if (req.url.startsWith("/app.js")) res.writeHead(200, { "Content-Type": "text/javascript" }).end(appJS);
      else res.writeHead(200, { "Content-Type": "text/html" }).end(html);
    });
    await new Promise((r) => site.listen(0, "127.0.0.1", r));
    siteURL = `http://127.0.0.1:${site.address().port}`;
    browser = await launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    site?.close();
    await eddy?.kill();
    tmp?.cleanup();
  });

  async function open(user, room) {
    const ctx = await browser.newContext({ viewport: { width: 800, height: 500 } });
    contexts.push(ctx);
    const page = await ctx.newPage();
    page.errors = watchErrors(page);
    const ws = eddy.url.replace("http://", "ws://") + "/ws";
    await page.goto(`${siteURL}/?ws=${encodeURIComponent(ws)}&token=${token(user)}&room=${room}&user=${user}`);
    await expect(page, "#state", (el) => el.textContent === "subscribed", `${user} subscribed`);
    return { ctx, page };
  }

  test("useChannel delivers messages and usePresence follows joins and leaves", async () => {
    const room = `chat:react${process.pid}`;
    const ann = await open("ann", room);
    const ben = await open("ben", room);
    await expect(ann.page, "#members", (el) => el.textContent.includes("ben"), "ann sees ben join");
    await expect(ben.page, "#members", (el) => el.textContent.includes("ann"), "ben sees ann, who was there first");
    await ann.page.fill("#text", "hello from react");
    await ann.page.press("#text", "Enter");
    await expect(ben.page, "#lines", (el) => el.textContent.includes("hello from react"), "ben receives ann's message");
    await expect(ann.page, "#lines", (el) => el.textContent.includes("hello from react"), "ann sees her own message");
    const shot = await screenshot(ann.page, "react-example");
    console.log(`screenshot: ${shot}`);
    await ben.ctx.close();
    await expect(ann.page, "#members", (el) => !el.textContent.includes("ben"), "ben leaves ann's member list");
    assert.equal(await ann.page.textContent("#count"), "1");
    assert.deepEqual(ann.page.errors, []);
  });
});
