// dist/eddy.min.js: a self-contained IIFE that defines the global `Eddy` (the client class).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";
import WebSocket from "ws";
import { EddyServer } from "../dist/server.js";
import { startFake, once } from "./helpers/fake-server.mjs";

const code = readFileSync(new URL("../dist/eddy.min.js", import.meta.url), "utf8");

test("eddy.min.js defines global Eddy and works with a browser-like global WebSocket", async (t) => {
  assert.ok(!/\bimport\b\s*[{*"']|\brequire\(/.test(code), "no module syntax or require in the bundle");
  // A bare browser-like global: only what a browser has, plus WebSocket.
  const ctx = vm.createContext({ WebSocket, setTimeout, clearTimeout, queueMicrotask, TextDecoder, atob, console });
  vm.runInContext(code, ctx);
  const Eddy = ctx.Eddy;
  assert.equal(typeof Eddy, "function");
  assert.equal(Eddy.name, "Eddy");
  assert.equal(typeof Eddy.EddyError, "function");
  const fake = await startFake();
  t.after(() => fake.close());
  const eddy = new Eddy(fake.url, { token: new EddyServer({ secret: "b".repeat(32) }).createToken({ sub: "web" }) });
  t.after(() => eddy.close());
  const ready = await once(eddy, "connected");
  assert.equal(ready.user, "web");
  const room = eddy.subscribe("chat:lobby");
  await once(room, "subscribed");
  const got = once(room, "hi");
  await room.publish("hi", { a: 1 });
  assert.equal(JSON.stringify((await got)[0]), JSON.stringify({ a: 1 })); // other realm: compare as JSON
});
