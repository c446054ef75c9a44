// Deterministic build: same sources + same pinned esbuild/typescript => same bytes.
// dist/ is committed, so `npm install ./clients/js` from a clone works without
// a build; test/package.test.mjs checks the committed files match a fresh build.
// - dist/*.js       ESM, one file per module (index.js, server.js, ...)
// - dist/index.cjs, dist/server.cjs  CommonJS bundles for require()
// - dist/eddy.min.js minified IIFE defining the global `Eddy` (embedded by the Go server)
// - dist/*.d.ts     declarations from tsc
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
// EDDY_DIST builds elsewhere (the freshness test); default: the package's dist/.
const dist = process.env.EDDY_DIST || join(root, "dist");
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

for (const name of ["index", "server", "react"]) {
  await build({
    absWorkingDir: root,
    entryPoints: [join(root, "src", `${name}.ts`)],
    outfile: join(dist, `${name}.cjs`),
    format: "cjs",
    platform: "neutral",
    target: "es2020",
    bundle: true,
    external: ["node:*", "react"],
    logLevel: "warning",
  });
}

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

execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json"), "--outDir", dist], {
  stdio: "inherit",
});
rmSync(join(dist, "browser.d.ts"), { force: true });
