// Builds and runs the real Eddy server (go run ./cmd/eddy serve) for integration tests.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
export const SECRET = "integration-test-secret-0123456789abcdef";
export const API_KEY = "integration-test-api-key";

/** Why integration tests cannot run, or "" when they can. */
export function unavailableReason() {
  if (process.env.EDDY_SKIP_INTEGRATION) return "EDDY_SKIP_INTEGRATION is set";
  if (process.env.EDDY_BIN) return existsSync(process.env.EDDY_BIN) ? "" : `EDDY_BIN ${process.env.EDDY_BIN} not found`;
  if (!existsSync(join(repoRoot, "cmd", "eddy", "main.go"))) return "cmd/eddy/main.go does not exist yet";
  return "";
}

/** Builds the server binary once per test file (go's build cache makes repeats fast). */
export function buildServer(tmp) {
  if (process.env.EDDY_BIN) return process.env.EDDY_BIN;
  const bin = join(tmp, "eddy");
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

/**
 * Starts `eddy serve` and waits for GET /healthz to answer 200.
 * Returns { port, url, apiUrl, proc, logs(), kill() }.
 */
export async function startServer({ bin, port, dataDir, tmp, extraArgs = [] }) {
  port ??= await freePort();
  // The "chat" namespace gets history (for recovery), presence and join/leave;
  // other namespaces keep the defaults (no history). Secret and key come as flags.
  const config = join(tmp, "eddy.yaml");
  if (!existsSync(config)) {
    writeFileSync(config, "namespaces:\n  chat: { history_size: 100, history_ttl: 10m, presence: true, join_leave: true }\n");
  }
  const args = [
    "serve",
    "--listen", `127.0.0.1:${port}`,
    "--secret", SECRET,
    "--api-key", API_KEY,
    "--data-dir", dataDir,
    "--ping-interval", "1s",
    "--config", config,
    ...extraArgs,
  ];
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (out += d));
  let killing = false;
  const exited = new Promise((r) =>
    proc.once("exit", (code, sig) => {
      // An exit we did not ask for is a server bug: show why.
      if (!killing) process.stderr.write(`\n[eddy server on ${port} exited unexpectedly: code=${code} signal=${sig}]\n${out}\n`);
      r({ code, sig });
    }),
  );
  const apiUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  let up = false;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      const res = await fetch(`${apiUrl}/healthz`);
      if (res.status === 200) {
        up = true;
        break;
      }
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!up) {
    killing = true;
    proc.kill("SIGKILL");
    throw new Error(`eddy did not become healthy on ${port}:\n${out}`);
  }
  return {
    port,
    apiUrl,
    url: `ws://127.0.0.1:${port}/ws`,
    proc,
    logs: () => out,
    async kill(signal = "SIGKILL") {
      killing = true;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export function tempDir() {
  const dir = mkdtempSync(join(os.tmpdir(), "eddy-js-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
