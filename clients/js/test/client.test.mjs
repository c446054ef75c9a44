// Client logic against a scripted fake server (test/helpers/fake-server.mjs).
// The same behaviours are checked against the real Go server in integration.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Eddy, EddyError } from "../dist/index.js";
import { EddyServer } from "../dist/server.js";
import { startFake, once, until, sleep } from "./helpers/fake-server.mjs";

const signer = new EddyServer({ secret: "f".repeat(32) });
const tok = (sub = "alice", ttl = 3600) => signer.createToken({ sub, ttl });
const fast = { WebSocket, backoffBase: 50, backoffCap: 400, requestTimeout: 2000 };

async function setup(t, opts = {}) {
  const fake = await startFake();
  const eddy = new Eddy(fake.url, { ...fast, token: tok(), ...opts });
  t.after(async () => {
    eddy.close();
    await fake.close();
  });
  return { fake, eddy };
}

test("connects, authenticates and reports the user", async (t) => {
  const fake = await startFake();
  t.after(() => fake.close());
  const eddy = new Eddy(fake.url, { ...fast, token: tok("bob") });
  t.after(() => eddy.close());
  const states = [];
  eddy.on("connecting", () => states.push("connecting"));
  const ready = await once(eddy, "connected");
  assert.equal(ready.user, "bob");
  assert.equal(eddy.state, "connected");
  assert.deepEqual(states, ["connecting"]);
  assert.equal(fake.frames[0].f.type, "auth");
  await eddy.ping();
});

test("subscribe, named and * handlers, batched frames, reserved event names", async (t) => {
  const { fake, eddy } = await setup(t);
  const room = eddy.subscribe("chat:lobby");
  assert.equal(eddy.subscribe("chat:lobby"), room, "subscribe is idempotent");
  const sub = await once(room, "subscribed");
  assert.equal(sub.recovered, false);
  assert.equal(sub.resubscribed, false);
  const named = [];
  const all = [];
  room.on("new-post", (data, msg) => named.push([data, msg.offset]));
  room.on("*", (event, data) => all.push(event));
  let errorHandlerCalls = 0;
  room.on("error", () => errorHandlerCalls++);
  // Three messages in one WebSocket message.
  fake.batch = true;
  const conn = [...fake.conns][0];
  const c = fake.chan("chat:lobby");
  const mk = (event, data) => ({ type: "message", channel: "chat:lobby", event, data, id: "x", ts: 1, offset: ++c.offset, epoch: "E1" });
  conn.sendFrames([mk("new-post", { n: 1 }), mk("other", 2), mk("new-post", { n: 3 }), mk("error", "app event named error")]);
  await until(() => all.length === 4, 2000, "4 messages");
  assert.deepEqual(named, [[{ n: 1 }, 1], [{ n: 3 }, 3]]);
  assert.deepEqual(all, ["new-post", "other", "new-post", "error"]);
  assert.equal(errorHandlerCalls, 0, "app event 'error' goes only to *");
});

test("deduplicates by offset within an epoch and adopts a new epoch", async (t) => {
  const { fake, eddy } = await setup(t);
  const room = eddy.subscribe("dedup");
  await once(room, "subscribed");
  const got = [];
  room.on("e", (d, m) => got.push(`${m.epoch}/${m.offset}`));
  const conn = [...fake.conns][0];
  const mk = (offset, epoch = "E1") => ({ type: "message", channel: "dedup", event: "e", data: null, id: "i", ts: 1, offset, epoch });
  conn.sendFrames([mk(1), mk(2), mk(2), mk(1), mk(3)]);
  conn.sendFrames([mk(1, "E2"), mk(2, "E2"), mk(2, "E2")]);
  await until(() => got.length >= 5, 2000);
  await sleep(50);
  assert.deepEqual(got, ["E1/1", "E1/2", "E1/3", "E2/1", "E2/2"]);
  assert.deepEqual(room.position, { epoch: "E2", offset: 2 });
});

test("publish resolves with the ack; errors reject with code", async (t) => {
  const { eddy } = await setup(t);
  const room = eddy.subscribe("chat:a");
  const got = once(room, "hello");
  const ack = await room.publish("hello", { x: 1 });
  assert.match(ack.id, /^m\d+$/);
  const [data, msg] = await got;
  assert.deepEqual(data, { x: 1 });
  assert.equal(msg.user, "alice");
  await assert.rejects(eddy.subscribe("ro:x").publish("e", 1), (e) => e instanceof EddyError && e.code === "forbidden");
  const members = await room.presence();
  assert.equal(members[0].user, "alice");
});

test("publish before connected is queued and sent after ready", async (t) => {
  const fake = await startFake();
  t.after(() => fake.close());
  const eddy = new Eddy(fake.url, { ...fast, token: tok(), autoConnect: false });
  t.after(() => eddy.close());
  const p = eddy.publish("chat:q", "e", 1);
  eddy.connect();
  assert.ok((await p).id);
});

test("subscribe error is surfaced on the subscription and it ends", async (t) => {
  const { eddy } = await setup(t);
  const room = eddy.subscribe("private:x");
  const err = await once(room, "error");
  assert.equal(err.code, "forbidden");
  assert.equal(room.state, "unsubscribed");
  assert.equal(eddy.getSubscription("private:x"), undefined);
});

test("request timeout rejects with code timeout", async (t) => {
  const { fake, eddy } = await setup(t, { requestTimeout: 200 });
  await once(eddy, "connected");
  fake.hook = (conn, f) => f.type === "ping";
  await assert.rejects(eddy.ping(), (e) => e.code === "timeout");
});

test("bad token: close 4001 and no reconnect loop without getToken", async (t) => {
  const fake = await startFake();
  t.after(() => fake.close());
  const eddy = new Eddy(fake.url, { ...fast, token: "bad.token.here" });
  t.after(() => eddy.close());
  let reconnecting = 0;
  eddy.on("reconnecting", () => reconnecting++);
  const errors = [];
  eddy.on("error", (e) => errors.push(e));
  const d = await once(eddy, "disconnected");
  assert.equal(d.code, 4001);
  assert.equal(d.willReconnect, false);
  await sleep(500);
  assert.equal(reconnecting, 0);
  assert.equal(fake.frames.filter((x) => x.f.type === "auth").length, 1);
  assert.equal(eddy.state, "disconnected");
  assert.equal(errors[0].code, "unauthorized");
});

test("4001 with getToken: fetches a new token, then reconnects", async (t) => {
  const fake = await startFake();
  t.after(() => fake.close());
  let calls = 0;
  const eddy = new Eddy(fake.url, {
    ...fast,
    getToken: async () => (++calls === 1 ? "bad.token.here" : tok("carol")),
  });
  t.after(() => eddy.close());
  const ready = await once(eddy, "connected");
  assert.equal(ready.user, "carol");
  assert.equal(calls, 2);
});

test("reconnects after a drop, resubscribes with since and recovers missed messages", async (t) => {
  const { fake, eddy } = await setup(t);
  const room = eddy.subscribe("rec");
  await once(room, "subscribed");
  const got = [];
  room.on("e", (d) => got.push(d));
  fake.publish("rec", "e", 1);
  fake.publish("rec", "e", 2);
  await until(() => got.length === 2);
  // Drop, and publish while the client is away.
  fake.hook = (conn, f) => {
    if (f.type === "subscribe" && f.since) {
      fake.publish("rec", "e", 3); // published between reconnect and resubscribe
      fake.publish("rec", "e", 4);
    }
    return false;
  };
  const reconnecting = once(eddy, "reconnecting");
  fake.dropAll();
  const d = await once(eddy, "disconnected");
  assert.equal(d.willReconnect, true);
  const r = await reconnecting;
  assert.ok(r.delay >= 0 && r.delay < 50);
  const sub = await once(room, "subscribed");
  assert.equal(sub.recovered, true);
  assert.equal(sub.resubscribed, true);
  const f = await fake.waitFrame((f) => f.type === "subscribe" && f.since);
  assert.deepEqual(f.since, { epoch: "E1", offset: 2 });
  await until(() => got.length === 4);
  await sleep(50);
  assert.deepEqual(got, [1, 2, 3, 4], "missed messages once each, in order");
});

test("recovered:false when the server lost the stream (new epoch)", async (t) => {
  const { fake, eddy } = await setup(t);
  const room = eddy.subscribe("lost");
  await once(room, "subscribed");
  fake.publish("lost", "e", 1);
  await once(room, "e");
  fake.epoch = "E2";
  fake.channels.clear();
  fake.dropAll(1012);
  const sub = await once(room, "subscribed");
  assert.equal(sub.recovered, false);
  assert.equal(sub.epoch, "E2");
  assert.deepEqual(room.position, { epoch: "E2", offset: 0 });
  fake.publish("lost", "e", "new");
  assert.equal((await once(room, "e"))[0], "new");
});

test("unsolicited subscribed (recovered:false) moves the position without a reconnect", async (t) => {
  const { fake, eddy } = await setup(t);
  const room = eddy.subscribe("resync");
  await once(room, "subscribed");
  fake.publish("resync", "e", 1);
  await once(room, "e");
  let disconnects = 0;
  eddy.on("disconnected", () => disconnects++);
  // The server's broker came back without the stream: it says so by itself,
  // with no id, then delivers the new stream.
  fake.epoch = "E2";
  fake.channels.clear();
  const subscribed = once(room, "subscribed");
  for (const conn of fake.conns) conn.sendFrames([{ type: "subscribed", channel: "resync", epoch: "E2", offset: 0, recovered: false }]);
  const sub = await subscribed;
  assert.equal(sub.recovered, false);
  assert.equal(sub.resubscribed, true);
  assert.equal(sub.epoch, "E2");
  assert.deepEqual(room.position, { epoch: "E2", offset: 0 });
  fake.publish("resync", "e", "new");
  assert.equal((await once(room, "e"))[0], "new");
  assert.equal(disconnects, 0);
  assert.equal(fake.frames.filter((x) => x.f.type === "subscribe").length, 1, "no resubscribe");
});

test("reconnect after the server restarts on the same port", async (t) => {
  let fake = await startFake();
  const port = fake.port;
  const eddy = new Eddy(fake.url, { ...fast, token: tok() });
  t.after(async () => {
    eddy.close();
    await fake.close();
  });
  const room = eddy.subscribe("restart");
  await once(room, "subscribed");
  await fake.close();
  await once(eddy, "disconnected");
  await sleep(300); // a few failed attempts
  const resubscribed = once(room, "subscribed", 8000);
  fake = await startFake({ port });
  const sub = await resubscribed;
  assert.equal(sub.resubscribed, true);
  fake.publish("restart", "e", "after");
  assert.equal((await once(room, "e"))[0], "after");
});

test("unsubscribe stops delivery and tells the server", async (t) => {
  const { fake, eddy } = await setup(t);
  const room = eddy.subscribe("u");
  await once(room, "subscribed");
  let n = 0;
  room.on("e", () => n++);
  await room.unsubscribe();
  assert.ok(fake.frames.some((x) => x.f.type === "unsubscribe" && x.f.channel === "u"));
  assert.equal(room.state, "unsubscribed");
  const conn = [...fake.conns][0];
  conn.sendFrames([{ type: "message", channel: "u", event: "e", data: 1, id: "m", ts: 1, offset: 99, epoch: "E1" }]);
  await sleep(100);
  assert.equal(n, 0);
  // A later subscribe creates a fresh subscription.
  const again = eddy.subscribe("u");
  assert.notEqual(again, room);
  await once(again, "subscribed");
});

test("refreshes the token before it expires, over the open connection", async (t) => {
  const fake = await startFake();
  t.after(() => fake.close());
  let calls = 0;
  const eddy = new Eddy(fake.url, { ...fast, getToken: () => (++calls, tok("dave", 2)) });
  t.after(() => eddy.close());
  await once(eddy, "connected");
  const f = await fake.waitFrame((f) => f.type === "refresh", 3000);
  assert.equal(typeof f.token, "string");
  assert.equal(calls, 2);
  assert.equal(fake.frames.filter((x) => x.f.type === "auth").length, 1, "no reconnect");
});

test("4003 (token expired) with getToken reconnects with a new token", async (t) => {
  const { fake, eddy } = await setup(t, { getToken: () => tok("erin") });
  await once(eddy, "connected");
  fake.dropAll(4003);
  const d = await once(eddy, "disconnected");
  assert.equal(d.code, 4003);
  assert.equal(d.willReconnect, true);
  const ready = await once(eddy, "connected");
  assert.equal(ready.user, "erin");
});

test("4011 (app deleted): no reconnect, even with getToken", async (t) => {
  const { fake, eddy } = await setup(t, { getToken: () => tok("fay") });
  await once(eddy, "connected");
  fake.dropAll(4011);
  const d = await once(eddy, "disconnected");
  assert.equal(d.code, 4011);
  assert.equal(d.willReconnect, false);
  assert.equal(eddy.state, "disconnected");
});

test("close() fails pending requests and stops reconnecting", async (t) => {
  const { fake, eddy } = await setup(t);
  await once(eddy, "connected");
  fake.hook = (conn, f) => f.type === "ping";
  const p = eddy.ping();
  eddy.close();
  await assert.rejects(p, (e) => e.code === "closed");
  assert.equal(eddy.state, "closed");
  await until(() => fake.conns.size === 0, 5000, "the server to see the connection closed");
});
