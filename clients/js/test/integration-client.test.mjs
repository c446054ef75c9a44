// Client behaviours that test/client.test.mjs checks against the scripted
// fake server, here against the REAL Go server built from this checkout:
// offset dedupe, getToken after 4001 and 4003, request timeout,
// publish before ready, and the reconnect backoff.
// Skipped with a reason while cmd/eddy does not exist (or EDDY_SKIP_INTEGRATION is set).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { Eddy, SseSocket } from "../dist/index.js";
import { EddyServer } from "../dist/server.js";
import { once, until, sleep } from "./helpers/fake-server.mjs";
import { API_KEY, SECRET, buildServer, startServer, tempDir, unavailableReason } from "./helpers/real-server.mjs";

// A WebSocket class that records the sockets it opens in list, so a test
// can cut its own client's connection.
function tracked(Base, list) {
  return class extends Base {
    constructor(...args) {
      super(...args);
      list.push(this);
    }
  };
}

// A socket that hands every WebSocket message to the client twice, as a
// network path that repeats data would: the frames are the real server's.
class DuplicatingWS extends WebSocket {
  set onmessage(fn) {
    super.onmessage = (ev) => {
      fn(ev);
      fn(ev);
    };
  }
  get onmessage() {
    return super.onmessage;
  }
}

// The same over the SSE transport: each event's data handed over twice.
class DuplicatingSSE extends SseSocket {
  constructor(...args) {
    super(...args);
    let fn = null;
    Object.defineProperty(this, "onmessage", {
      get: () => fn,
      set: (f) => {
        fn = f && ((ev) => {
          f(ev);
          f(ev);
        });
      },
    });
  }
}

const reason = unavailableReason();

for (const transport of ["websocket", "sse"]) describe(`client behaviours against the real server over ${transport}`, { skip: reason || false, timeout: 240_000 }, () => {
  let tmp, bin, srv, api;
  const clients = [];
  // A client of url (default: the shared server); its sockets are in .sockets.
  // opts.duplicate: a transport that hands every message over twice.
  const client = (opts, url = srv.url) => {
    const sockets = [];
    const { duplicate, ...rest } = opts;
    const t =
      transport === "sse"
        ? { transports: ["sse"], SSE: tracked(duplicate ? DuplicatingSSE : SseSocket, sockets) }
        : { transports: ["websocket"], WebSocket: tracked(duplicate ? DuplicatingWS : WebSocket, sockets) };
    const e = new Eddy(url, { backoffBase: 100, backoffCap: 1000, requestTimeout: 5000, ...rest, ...t });
    e.sockets = sockets;
    clients.push(e);
    return e;
  };
  const tok = (o) => api.createToken({ ttl: 600, ...o });
  let uniq = 0;
  const chan = (p = "chat") => `${p}:c${process.pid}-${++uniq}`;

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

  test("offset dedupe: every real frame delivered twice reaches the app once, in order", async () => {
    const eddy = client({ duplicate: true, token: tok({ sub: "dup" }) });
    const name = chan();
    const room = eddy.subscribe(name);
    await once(room, "subscribed");
    const got = [];
    room.on("e", (d, m) => got.push(m.offset));
    const all = [];
    eddy.on("message", (m) => all.push(m.offset));
    for (let i = 1; i <= 5; i++) await api.publish(name, "e", i);
    await until(() => got.length >= 5, 5000, "5 messages");
    // A sentinel after them: once it is in, every duplicate before it was seen.
    const sentinel = once(room, "sentinel");
    await api.publish(name, "sentinel", null);
    await sentinel;
    assert.deepEqual(got, [1, 2, 3, 4, 5], "each offset once, in order");
    assert.deepEqual(all, [1, 2, 3, 4, 5, 6], "the client-wide message event deduplicates too");
    assert.equal(room.position.offset, 6);
  });

  test("4001 with getToken: a refused token is replaced by a fresh one from getToken", async () => {
    const bad = new EddyServer({ secret: "wrong-secret-wrong-secret-wrong-secret!" }).createToken({ sub: "mallory" });
    let calls = 0;
    const eddy = client({ getToken: () => (++calls === 1 ? bad : tok({ sub: "nina" })) });
    const d = await once(eddy, "disconnected");
    assert.equal(d.code, 4001);
    assert.equal(d.willReconnect, true);
    const ready = await once(eddy, "connected");
    assert.equal(ready.user, "nina");
    assert.equal(calls, 2);
    await eddy.ping();
  });

  test("4003 with getToken: the server closes at exp, getToken gives the next connection its token", async () => {
    // The first token expires in 2 s; the refreshes are refused (a token
    // for another user may not take over the connection), so the server
    // closes with 4003 at exp, and the reconnect uses getToken's token.
    let calls = 0;
    const eddy = client({ getToken: () => (++calls === 1 ? tok({ sub: "olga", ttl: 2 }) : tok({ sub: "pete" })) });
    const first = await once(eddy, "connected");
    assert.equal(first.user, "olga");
    const d = await once(eddy, "disconnected", 8000);
    assert.equal(d.code, 4003);
    assert.equal(d.willReconnect, true);
    const ready = await once(eddy, "connected", 8000);
    assert.equal(ready.user, "pete");
    await eddy.ping();
  });

  test("request timeout: a server that does not answer rejects the request with code timeout", async (t) => {
    // A server of its own, stopped with SIGSTOP: its socket stays open but nothing answers.
    const own = await startServer({ bin, dataDir: join(tmp.dir, "data-stop"), tmp: tmp.dir });
    const eddy = client({ token: tok({ sub: "quin" }), requestTimeout: 300 }, own.url);
    t.after(async () => {
      eddy.close();
      await own.kill();
    });
    await once(eddy, "connected");
    await eddy.ping();
    own.proc.kill("SIGSTOP");
    // kill() returns before the process is stopped: wait until it is, or a
    // fast transport's answer could still slip out.
    const stopped = () => readFileSync(`/proc/${own.proc.pid}/stat`, "utf8").split(") ")[1]?.startsWith("T");
    for (let i = 0; i < 200 && !stopped(); i++) await new Promise((r) => setTimeout(r, 10));
    try {
      await assert.rejects(eddy.ping(), (e) => e.code === "timeout");
    } finally {
      own.proc.kill("SIGCONT");
    }
    await eddy.ping(); // the connection itself was fine
  });

  test("publish before ready is queued, sent after ready, and delivered", async () => {
    const name = chan();
    const watcher = client({ token: tok({ sub: "watch" }) });
    const w = watcher.subscribe(name);
    await once(w, "subscribed");
    const seen = once(w, "early");
    const eddy = client({ token: tok({ sub: "rosa", publish: ["chat:*"] }), autoConnect: false });
    const p = eddy.publish(name, "early", { n: 1 });
    assert.equal(eddy.state, "disconnected");
    eddy.connect();
    const ack = await p;
    assert.ok(ack.id);
    const [data, msg] = await seen;
    assert.deepEqual(data, { n: 1 });
    assert.equal(msg.id, ack.id);
    assert.equal(msg.user, "rosa");
  });

  test("backoff: connections lost right after ready do not reset it", async () => {
    // Every connection is cut as soon as it is ready: the attempts must
    // count up (0, 1, 2, ...), as they would for a server that accepts and
    // closes at once, instead of starting over at each connect.
    const eddy = client({ token: tok({ sub: "sam" }), backoffBase: 10, backoffCap: 80, stableAfter: 60_000 });
    const attempts = [];
    eddy.on("reconnecting", (ev) => attempts.push(ev.attempt));
    let connects = 0;
    eddy.on("connected", () => {
      connects++;
      if (connects <= 5) eddy.sockets.at(-1).terminate();
    });
    await until(() => connects === 6, 10_000, "six connections");
    assert.deepEqual(attempts, [0, 1, 2, 3, 4]);
  });

  test("backoff: a connection that stayed up for stableAfter resets it", async () => {
    const eddy = client({ token: tok({ sub: "tara" }), backoffBase: 10, backoffCap: 80, stableAfter: 1000 });
    const attempts = [];
    eddy.on("reconnecting", (ev) => attempts.push(ev.attempt));
    let connects = 0;
    eddy.on("connected", () => {
      // The first two are cut at once, well within stableAfter.
      if (++connects <= 2) eddy.sockets.at(-1).terminate();
    });
    await until(() => connects === 3, 5000, "third connection");
    await sleep(1100); // the third connection stays up past stableAfter
    eddy.sockets.at(-1).terminate();
    await until(() => connects === 4, 5000, "fourth connection");
    assert.deepEqual(attempts, [0, 1, 0]);
  });
});
