// Helpers for the Pusher compatibility tests: build and run the real eddy
// server (and redis-server for the cluster test) on free loopback ports,
// with the Pusher protocol on, and make clients of the real npm libraries.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import PusherJS from "pusher-js";
import Pusher from "pusher";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SECRET = "pusher-e2e-secret-0123456789abcdef-0123456789";
export const API_KEY = "pusher-e2e-api-key";
export const APP_ID = "4242";
export const KEY = "e2ekey0123456789abcd";
export const APP_SECRET = "e2e-pusher-app-secret";
// 32 bytes, base64: the SDK derives each encrypted channel's key from it.
export const MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tempDir() {
  const dir = mkdtempSync(join(os.tmpdir(), "eddy-pusher-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Builds cmd/eddy into dir (go's build cache makes repeats fast). */
export function buildEddy(dir) {
  if (process.env.EDDY_BIN) return process.env.EDDY_BIN;
  const bin = join(dir, "eddy");
  execFileSync("go", ["build", "-o", bin, "./cmd/eddy"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  return bin;
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

function run(bin, args) {
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
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

async function waitUntil(what, cond, proc, logs) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      if (await cond()) return;
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  proc.kill("SIGKILL");
  throw new Error(`${what} did not come up:\n${logs()}`);
}

/** Starts redis-server (Debian's) on a free port, without persistence. */
export async function startRedis() {
  const port = await freePort();
  const p = run("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
  await waitUntil("redis-server", () => new Promise((res) => {
    const s = net.connect(port, "127.0.0.1", () => { s.end(); res(true); });
    s.on("error", () => res(false));
  }), p.proc, p.logs);
  return { ...p, url: `redis://127.0.0.1:${port}` };
}

/**
 * Starts `eddy serve` with the Pusher app of this file's constants and
 * client events on; extra lines are appended to its eddy.yaml.
 */
export async function startEddy({ bin, dir, name = "eddy", extra = [] }) {
  const port = await freePort();
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, [
    `secret: "${SECRET}"`,
    `api_key: "${API_KEY}"`,
    `data_dir: "${join(dir, name + "-data")}"`,
    `pusher_app_id: "${APP_ID}"`,
    `pusher_key: "${KEY}"`,
    `pusher_secret: "${APP_SECRET}"`,
    "pusher_client_events: true",
    ...extra,
    "",
  ].join("\n"));
  const p = run(bin, ["serve", "--config", config, "--listen", `127.0.0.1:${port}`, "--shutdown-timeout", "2s", "--drain-duration", "0", "--log-level", "debug"]);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil("eddy", async () => (await fetch(`${url}/healthz`)).status === 200, p.proc, p.logs);
  return { ...p, port, url };
}

/** The official server SDK, pointed at eddy. */
export function sdk(eddy, options = {}) {
  return new Pusher({ appId: APP_ID, key: KEY, secret: APP_SECRET, host: "127.0.0.1", port: String(eddy.port), useTLS: false, encryptionMasterKeyBase64: MASTER_KEY, ...options });
}

/** A pusher-js client of eddy; auth is how private channels are authorised. */
export function client(eddy, { authorizer, userAuthenticator, key = KEY } = {}) {
  return new PusherJS(key, {
    cluster: "eddy",
    wsHost: "127.0.0.1",
    wsPort: eddy.port,
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    channelAuthorization: authorizer ? { customHandler: authorizer } : undefined,
    userAuthentication: userAuthenticator ? { customHandler: userAuthenticator } : undefined,
  });
}

/** Resolves with the next time emitter fires event (with its argument). */
export function next(bind, event, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    bind(event, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

export function connected(p) {
  if (p.connection.state === "connected") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still ${p.connection.state}`)), 10_000);
    p.connection.bind("connected", () => { clearTimeout(timer); resolve(); });
  });
}

export function subscribed(channel) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${channel.name}: not subscribed`)), 10_000);
    channel.bind("pusher:subscription_succeeded", (d) => { clearTimeout(timer); resolve(d); });
    channel.bind("pusher:subscription_error", (e) => { clearTimeout(timer); reject(new Error(`${channel.name}: ${JSON.stringify(e)}`)); });
  });
}

/** Waits until cond() holds. */
export async function eventually(what, cond, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(50);
  }
}
