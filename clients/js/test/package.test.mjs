// The package as a developer installs it: from a clone's folder and from an
// `npm pack` tarball, imported with ESM and with require, and type-checked
// against the shipped types. Also: the committed dist/ is what the sources
// build to, so a clone never ships stale code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const npm = (args, cwd) => execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error", "--offline"], { cwd, encoding: "utf8" });
const node = (args, cwd) => execFileSync(process.execPath, args, { cwd, encoding: "utf8" }).trim();

function freshProject(t) {
  const dir = mkdtempSync(join(tmpdir(), "eddy-pkg-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
  return dir;
}

function checkImports(dir) {
  const esm = node(["--input-type=module", "-e", `import Eddy, { EddyError } from "eddy-client"; import { EddyServer } from "eddy-client/server"; console.log(typeof Eddy, typeof EddyError, typeof EddyServer)`], dir);
  assert.equal(esm, "function function function");
  const cjs = node(["-e", `const { Eddy } = require("eddy-client"); const { EddyServer } = require("eddy-client/server"); const t = new EddyServer({ secret: "s".repeat(32) }).createToken({ sub: "a" }); console.log(typeof Eddy, t.split(".").length)`], dir);
  assert.equal(cjs, "function 3");
  writeFileSync(
    join(dir, "app.ts"),
    `import { Eddy, type EddyOptions } from "eddy-client";
import { EddyServer } from "eddy-client/server";
const opts: EddyOptions = { token: new EddyServer({ secret: "s".repeat(32) }).createToken({ sub: "a" }) };
const eddy = new Eddy("ws://localhost:8080/ws", opts);
const room = eddy.subscribe("chat:lobby");
room.on("new-post", (data: unknown) => console.log(data));
export {};
`,
  );
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, lib: ["ES2020", "DOM"], types: [], skipLibCheck: false } }),
  );
  writeFileSync(join(dir, "package.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, "package.json"), "utf8")), type: "module" }));
  execFileSync(process.execPath, [join(pkgDir, "node_modules", "typescript", "bin", "tsc"), "-p", dir], { cwd: dir, encoding: "utf8" });
}

test("the committed dist/ is exactly what the sources build to", () => {
  const out = mkdtempSync(join(tmpdir(), "eddy-dist-"));
  try {
    execFileSync(process.execPath, [join(pkgDir, "scripts", "build.mjs")], { env: { ...process.env, EDDY_DIST: out }, stdio: "inherit" });
    const built = readdirSync(out).sort();
    assert.deepEqual(readdirSync(join(pkgDir, "dist")).sort(), built, "dist/ has other files than a fresh build");
    for (const f of built) {
      assert.equal(readFileSync(join(pkgDir, "dist", f), "utf8"), readFileSync(join(out, f), "utf8"), `dist/${f} is stale: run npm run build`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("installs from the clone's folder: ESM, require and TypeScript", (t) => {
  const dir = freshProject(t);
  npm(["install", pkgDir], dir);
  checkImports(dir);
});

test("installs from an npm pack tarball: ESM, require and TypeScript", (t) => {
  const packDir = mkdtempSync(join(tmpdir(), "eddy-tgz-"));
  t.after(() => rmSync(packDir, { recursive: true, force: true }));
  const name = npm(["pack", "--pack-destination", packDir], pkgDir).trim().split("\n").pop();
  const dir = freshProject(t);
  npm(["install", join(packDir, name)], dir);
  checkImports(dir);
});
