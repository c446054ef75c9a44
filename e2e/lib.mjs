// Helpers for the browser tests: build and run the real eddy server and the
// forum example, drive Debian's Chromium with playwright-core (never a
// downloaded browser), and a TCP proxy whose connections a test can cut.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const outputDir = join(repoRoot, "test-output");
export const SECRET = "e2e-test-secret-0123456789abcdef-0123456789";
export const API_KEY = "e2e-test-api-key";
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tempDir() {
  const dir = mkdtempSync(join(os.tmpdir(), "eddy-e2e-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Builds cmd/eddy and examples/forum into dir/bin (go's build cache makes repeats fast). */
export function buildBinaries(dir) {
  const binDir = join(dir, "bin");
  const eddy = process.env.EDDY_BIN || join(binDir, "eddy");
  const forum = join(binDir, "forum");
  const go = (out, pkg) => execFileSync("go", ["build", "-o", out, pkg], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  if (!process.env.EDDY_BIN) go(eddy, "./cmd/eddy");
  go(forum, "./examples/forum");
  return { eddy, forum };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, proc, out, what) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  proc.kill("SIGKILL");
  throw new Error(`${what} did not come up at ${url}:\n${out()}`);
}

function run(bin, args, opts = {}) {
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  let out = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (out += d));
  const exited = new Promise((r) => proc.once("exit", (code, signal) => r({ code, signal })));
  return {
    proc,
    logs: () => out,
    async kill(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/**
 * Writes dir/eddy.yaml (secret, API key, data_dir, the chat namespace of the
 * default config) unless it exists, and starts `eddy serve --demo` on port.
 */
export async function startEddy({ bin, dir, port }) {
  port ??= await freePort();
  const config = join(dir, "eddy.yaml");
  mkdirSync(dir, { recursive: true });
  if (!existsSync(config)) writeFileSync(
    config,
    [
      `secret: "${SECRET}"`,
      `api_key: "${API_KEY}"`,
      `data_dir: "${join(dir, "data")}"`,
      "namespaces:",
      "  chat: { history_size: 100, history_ttl: 10m, presence: true, join_leave: true }",
      "",
    ].join("\n"),
  );
  const p = run(bin, ["serve", "--config", config, "--listen", `127.0.0.1:${port}`, "--demo", "--ping-interval", "1s", "--shutdown-timeout", "2s", "--drain-duration", "0"]);
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(`${url}/healthz`, p.proc, p.logs, "eddy");
  return { ...p, port, url };
}

/** Starts the forum example against eddyURL. */
export async function startForum({ bin, eddyURL, dir }) {
  const port = await freePort();
  const p = run(bin, ["--eddy", eddyURL, "--api-key", API_KEY, "--secret", SECRET, "--listen", `127.0.0.1:${port}`], { cwd: dir });
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(`${url}/`, p.proc, p.logs, "forum");
  return { ...p, port, url };
}

/** Publishes through eddy's HTTP API. */
export async function publish(eddyURL, channel, event, data) {
  const res = await fetch(`${eddyURL}/api/v1/publish`, {
    method: "POST",
    headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ channel, event, data }),
  });
  if (!res.ok) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/**
 * Launches Debian's Chromium headless. Playwright gives it a fresh temporary
 * user-data-dir (removed on close); each test user gets its own context.
 */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Saves a full-page screenshot as test-output/<name>.png and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(outputDir, { recursive: true });
  const path = join(outputDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Collects a page's console errors and uncaught exceptions. */
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

/**
 * A TCP proxy from a free port to target. cut() destroys every open
 * connection and refuses new ones until resume().
 */
export async function startProxy(targetPort) {
  const sockets = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    resume() {
      refusing = false;
    },
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}
