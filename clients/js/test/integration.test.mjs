// Client against the REAL Go server, built from this checkout (cmd/eddy).
// Skipped with a reason while cmd/eddy does not exist (or EDDY_SKIP_INTEGRATION is set).
// EDDY_BIN=/path/to/eddy uses a prebuilt binary instead of `go build`.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import WebSocket from "ws";
import { Eddy, SseSocket } from "../dist/index.js";
import { EddyServer } from "../dist/server.js";
import { once, until, sleep } from "./helpers/fake-server.mjs";
import { API_KEY, SECRET, buildServer, startServer, tempDir, unavailableReason } from "./helpers/real-server.mjs";

// A ws WebSocket that records every instance and how many messages held batched frames.
const sockets = [];
const stats = { messages: 0, batched: 0, frames: 0 };
class RecordingWS extends WebSocket {
  constructor(url) {
    super(url);
    sockets.push(this);
  }
  set onmessage(fn) {
    super.onmessage = (ev) => {
      stats.messages++;
      const lines = String(ev.data).split("\n").filter(Boolean).length;
      stats.frames += lines;
      if (lines > 1) stats.batched++;
      fn(ev);
    };
  }
  get onmessage() {
    return super.onmessage;
  }
}

// The same for the SSE transport: an SseSocket whose event data (a batch,
// newline-joined as a WebSocket message's) is counted the same way.
class RecordingSSE extends SseSocket {
  constructor(...args) {
    super(...args);
    sockets.push(this);
    let fn = null;
    Object.defineProperty(this, "onmessage", {
      get: () => fn,
      set: (f) => {
        fn = f && ((ev) => {
          stats.messages++;
          const lines = String(ev.data).split("\n").filter(Boolean).length;
          stats.frames += lines;
          if (lines > 1) stats.batched++;
          f(ev);
        });
      },
    });
  }
}

const reason = unavailableReason();

// Every protocol test runs over each transport, each against its own server.
const transportOpts = {
  websocket: { transports: ["websocket"], WebSocket: RecordingWS },
  sse: { transports: ["sse"], SSE: RecordingSSE },
};

for (const transport of ["websocket", "sse"]) describe(`real server over ${transport}`, { skip: reason || false, timeout: 240_000 }, () => {
  let tmp, bin, srv, api;
  const clients = [];
  const client = (opts) => {
    const e = new Eddy(srv.url, { ...transportOpts[transport], backoffBase: 100, backoffCap: 1000, requestTimeout: 5000, ...opts });
    clients.push(e);
    return e;
  };
  const tok = (o) => api.createToken({ ttl: 600, ...o });
  let uniq = 0;
  const chan = (p = "chat") => `${p}:t${process.pid}-${++uniq}`;

  before(async () => {
    tmp = tempDir();
    bin = buildServer(tmp.dir);
    srv = await startServer({ bin, dataDir: join(tmp.dir, "data"), tmp: tmp.dir });
    api = new EddyServer({ apiUrl: srv.apiUrl, apiKey: API_KEY, secret: SECRET });
  });

  after(async () => {
    for (const c of clients) c.close();
    if (srv) await srv.kill();
    tmp?.cleanup();
  });

  test("connect + auth", async () => {
    const eddy = client({ token: tok({ sub: "alice" }) });
    const ready = await once(eddy, "connected");
    assert.equal(ready.user, "alice");
    assert.equal(eddy.transport, transport);
    assert.ok(ready.conn, "ready carries a conn id");
    await eddy.ping();
  });

  test("subscribe, receive HTTP-published messages, named and * handlers", async (t) => {
    const eddy = client({ token: tok({ sub: "bob" }) });
    const name = chan();
    const room = eddy.subscribe(name);
    const sub = await once(room, "subscribed");
    t.diagnostic(`subscribed reply: epoch=${JSON.stringify(sub.epoch)} offset=${sub.offset}`);
    assert.equal(typeof sub.epoch, "string");
    const named = [];
    const all = [];
    room.on("new-post", (data, msg) => named.push({ data, msg }));
    room.on("*", (event) => all.push(event));
    const { id } = await api.publish(name, "new-post", { text: "hi" });
    assert.ok(id, "HTTP publish returns an id");
    await api.publish(name, "other", 2);
    await until(() => all.length === 2, 5000, "2 messages");
    assert.deepEqual(all, ["new-post", "other"]);
    assert.equal(named.length, 1);
    const { data, msg } = named[0];
    assert.deepEqual(data, { text: "hi" });
    assert.equal(msg.id, id);
    assert.equal(msg.channel, name);
    assert.equal(msg.user, undefined, "no user on HTTP-published messages");
    assert.equal(typeof msg.ts, "number");
    assert.equal(msg.offset, sub.offset + 1);
  });

  test("backend batch: one result per message in order, refused ones in place, channel order kept", async () => {
    const eddy = client({ token: tok({ sub: "batcher" }) });
    const a = chan(), b = chan();
    const got = [];
    for (const name of [a, b]) {
      const room = eddy.subscribe(name);
      room.on("*", (event, data, msg) => got.push({ channel: msg.channel, n: data.n, offset: msg.offset }));
      await once(room, "subscribed");
    }
    const results = await api.batch([
      { channel: a, event: "e", data: { n: 1 } },
      { channel: "bad channel", event: "e", data: { n: 0 } },
      { channel: b, event: "e", data: { n: 2 } },
      { channel: a, event: "", data: { n: 0 } },
      { channel: a, event: "e", data: { n: 3 } },
    ]);
    assert.equal(results.length, 5);
    assert.ok(results[0].id && results[0].offset >= 1, JSON.stringify(results[0]));
    assert.equal(results[1].error?.code, "bad_request");
    assert.ok(results[2].id, JSON.stringify(results[2]));
    assert.equal(results[3].error?.code, "bad_request");
    assert.equal(results[4].offset, results[0].offset + 1, "items of one channel keep their order");
    await until(() => got.length === 3, 5000, "3 messages");
    assert.deepEqual(got.filter((m) => m.channel === a).map((m) => m.n), [1, 3]);
    assert.deepEqual(got.filter((m) => m.channel === b).map((m) => m.n), [2]);
    await assert.rejects(api.batch([]), (err) => err.code === "bad_request" && err.status === 400);
  });

  test("publish ack, and forbidden when the token does not allow it", async () => {
    const eddy = client({ token: tok({ sub: "carol", publish: ["chat:*"] }) });
    const name = chan();
    const room = eddy.subscribe(name);
    await once(room, "subscribed");
    const got = once(room, "hello");
    const ack = await room.publish("hello", { n: 1 });
    assert.ok(ack.id);
    const [data, msg] = await got;
    assert.deepEqual(data, { n: 1 });
    assert.equal(msg.user, "carol");
    assert.equal(msg.id, ack.id);
    await assert.rejects(eddy.publish(chan("news"), "x", 1), (e) => e.code === "forbidden");
  });

  test("subscribe outside the token's channels: error on the subscription", async () => {
    const eddy = client({ token: tok({ sub: "dan", channels: ["chat:*"] }) });
    const room = eddy.subscribe(chan("secret"));
    const err = await once(room, "error");
    assert.equal(err.code, "forbidden");
    assert.equal(room.state, "unsubscribed");
  });

  test("bad token: close 4001, no reconnect loop", async () => {
    const bad = new EddyServer({ secret: "wrong-secret-wrong-secret-wrong-secret!" }).createToken({ sub: "mallory" });
    const eddy = client({ token: bad });
    let reconnecting = 0;
    eddy.on("reconnecting", () => reconnecting++);
    const errors = [];
    eddy.on("error", (e) => errors.push(e));
    const d = await once(eddy, "disconnected");
    assert.equal(d.code, 4001);
    assert.equal(d.willReconnect, false);
    assert.equal(errors[0]?.code, "unauthorized");
    await sleep(700);
    assert.equal(reconnecting, 0);
    assert.equal(eddy.state, "disconnected");
  });

  test("batched frames: a burst arrives complete and in offset order", async (t) => {
    const eddy = client({ token: tok({ sub: "erin" }) });
    const name = chan();
    const room = eddy.subscribe(name);
    await once(room, "subscribed");
    const offsets = [];
    room.on("burst", (d, m) => offsets.push(m.offset));
    const before = { ...stats };
    const N = 200;
    await Promise.all(Array.from({ length: N }, (_, i) => api.publish(name, "burst", i)));
    await until(() => offsets.length === N, 10_000, `${N} messages`);
    for (let i = 1; i < N; i++) assert.equal(offsets[i], offsets[i - 1] + 1, "offsets strictly +1");
    t.diagnostic(
      `burst of ${N}: ${stats.messages - before.messages} WebSocket messages, ${stats.batched - before.batched} of them batched`,
    );
  });

  test("unsubscribe stops delivery", async () => {
    const eddy = client({ token: tok({ sub: "frank" }) });
    const name = chan();
    const room = eddy.subscribe(name);
    await once(room, "subscribed");
    let n = 0;
    room.on("*", () => n++);
    await api.publish(name, "e", 1);
    await until(() => n === 1);
    await room.unsubscribe();
    const watcher = client({ token: tok({ sub: "watcher" }) });
    const w = watcher.subscribe(name);
    await once(w, "subscribed");
    const seen = once(w, "e");
    await api.publish(name, "e", 2);
    await seen; // the watcher got it, so it was delivered
    await sleep(100);
    assert.equal(n, 1);
  });

  test("presence: members in subscribed, presence() request, join and leave events", async () => {
    const name = chan(); // "chat" namespace: presence + join_leave in the test config
    const alice = client({ token: tok({ sub: "pa", info: { name: "Alice" } }) });
    const room = alice.subscribe(name);
    const sub = await once(room, "subscribed");
    assert.ok(Array.isArray(sub.members), "subscribed carries members in presence channels");
    assert.ok(sub.members.some((m) => m.user === "pa"));
    const events = [];
    room.on("presence", (ev) => events.push(ev));
    const bob = client({ token: tok({ sub: "pb" }) });
    const bobRoom = bob.subscribe(name);
    await once(bobRoom, "subscribed");
    await until(() => events.some((e) => e.action === "join" && e.member.user === "pb"), 5000, "join event");
    const members = await room.presence();
    assert.deepEqual(members.map((m) => m.user).sort(), ["pa", "pb"]);
    assert.deepEqual(members.find((m) => m.user === "pa").info, { name: "Alice" });
    await bobRoom.unsubscribe();
    await until(() => events.some((e) => e.action === "leave" && e.member.user === "pb"), 5000, "leave event");
    // A namespace without presence answers with a coded error, not a timeout.
    await assert.rejects(alice.subscribe(chan("news")).presence(), (e) => e.code === "bad_request");
  });

  test("token refresh over the open connection keeps it alive past exp", async () => {
    let calls = 0;
    const eddy = client({ getToken: () => (++calls, tok({ sub: "hank", ttl: 3 })) });
    await once(eddy, "connected");
    let drops = 0;
    eddy.on("disconnected", () => drops++);
    const errors = [];
    eddy.on("error", (e) => errors.push(e));
    await sleep(4500); // past the first token's exp
    assert.ok(calls >= 2, `getToken called for refresh (${calls})`);
    assert.equal(drops, 0, `no disconnect: ${errors.map((e) => e.message).join("; ")}`);
    await eddy.ping();
  });

  test("expired token is closed with 4003 when there is no refresh", async () => {
    const eddy = client({ token: tok({ sub: "ivy", ttl: 2 }) });
    await once(eddy, "connected");
    const d = await once(eddy, "disconnected", 6000);
    assert.equal(d.code, 4003);
    assert.equal(d.willReconnect, false);
  });

  test("recovery after a dropped connection: resubscribe with since, recovered:true", async (t) => {
    const eddy = client({ token: tok({ sub: "jack" }) });
    const name = chan();
    const room = eddy.subscribe(name);
    await once(room, "subscribed");
    const got = [];
    room.on("e", (d) => got.push(d));
    await api.publish(name, "e", 1);
    await until(() => got.length === 1);
    const sock = sockets.at(-1); // this client's socket: the last one opened
    assert.equal(sock.readyState, 1);
    // Drop from the client side, publish while away.
    const reconnected = once(room, "subscribed", 8000);
    const disconnected = once(eddy, "disconnected");
    sock.terminate();
    await disconnected;
    await api.publish(name, "e", 2);
    await api.publish(name, "e", 3);
    const sub = await reconnected;
    t.diagnostic(`resubscribe reply: recovered=${sub.recovered} epoch=${sub.epoch} offset=${sub.offset}`);
    assert.equal(sub.recovered, true, "chat namespace has history: the gap is filled");
    assert.equal(sub.resubscribed, true);
    await until(() => got.length === 3, 5000, "missed messages");
    await sleep(100);
    assert.deepEqual(got, [1, 2, 3]);
  });

  test("recovery impossible without history: recovered:false surfaced to the app", async () => {
    const eddy = client({ token: tok({ sub: "lena" }) });
    const name = chan("news"); // default namespace options: history_size 0
    const room = eddy.subscribe(name);
    await once(room, "subscribed");
    const got = [];
    room.on("e", (d) => got.push(d));
    await api.publish(name, "e", 1);
    await until(() => got.length === 1);
    const sock = sockets.at(-1);
    const reconnected = once(room, "subscribed", 8000);
    const disconnected = once(eddy, "disconnected");
    sock.terminate();
    await disconnected;
    await api.publish(name, "e", 2);
    const sub = await reconnected;
    assert.equal(sub.resubscribed, true);
    assert.equal(sub.recovered, false);
    assert.equal(sub.offset, 2, "position jumps to the stream's head");
    await api.publish(name, "e", 3);
    await until(() => got.includes(3));
    assert.deepEqual(got, [1, 3]);
  });

  // Last: it replaces the server process.
  test("reconnect after server restart (kill -9, same port) with resubscribe", async (t) => {
    const eddy = client({ token: tok({ sub: "kate" }) });
    const name = chan();
    const room = eddy.subscribe(name);
    await once(room, "subscribed");
    const got = [];
    room.on("e", (d) => got.push(d));
    await api.publish(name, "e", "before");
    await until(() => got.length === 1);
    const epochBefore = room.position.epoch;
    const disconnected = once(eddy, "disconnected");
    const resubscribed = once(room, "subscribed", 20_000); // may fire while startServer still polls /healthz
    await srv.kill("SIGKILL");
    const d = await disconnected;
    assert.equal(d.willReconnect, true);
    await sleep(300);
    srv = await startServer({ bin, port: srv.port, dataDir: join(tmp.dir, "data"), tmp: tmp.dir });
    const sub = await resubscribed;
    assert.equal(sub.resubscribed, true);
    t.diagnostic(`after restart: recovered=${sub.recovered} epoch=${sub.epoch} offset=${sub.offset}`);
    if (sub.epoch !== epochBefore) assert.equal(sub.recovered, false, "a new epoch can never be recovered");
    await api.publish(name, "e", "after-restart");
    await until(() => got.includes("after-restart"), 5000);
  });
});

