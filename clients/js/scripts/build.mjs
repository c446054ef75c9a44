// Deterministic build: same sources + same pinned esbuild/typescript => same bytes.
// - dist/*.js       ESM, one file per module (index.js, server.js, ...)
// - dist/eddy.min.js minified IIFE defining the global `Eddy` (embedded by the Go server)
// - dist/*.d.ts     declarations from tsc
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });

const modules = readdirSync(join(root, "src"))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && f !== "browser.ts")
  .sort()
  .map((f) => join(root, "src", f));

await build({
  absWorkingDir: root,
  entryPoints: modules,
  outdir: dist,
  format: "esm",
  platform: "neutral",
  target: "es2020",
  bundle: false,
  sourcemap: false,
  logLevel: "warning",
});

await build({
  absWorkingDir: root,
  entryPoints: [join(root, "src", "browser.ts")],
  outfile: join(dist, "eddy.min.js"),
  format: "iife",
  platform: "browser",
  target: "es2019",
  bundle: true,
  minify: true,
  keepNames: true,
  legalComments: "none",
  charset: "utf8",
  banner: { js: `/*! eddy-client v${pkg.version} | MIT */` },
  logLevel: "warning",
});

execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json")], {
  stdio: "inherit",
});
rmSync(join(dist, "browser.d.ts"), { force: true });
