// pusher-js (Node) against eddy, driven by the official pusher server SDK.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { tempDir, buildEddy, startEddy, sdk, client, next, connected, subscribed, eventually } from "./lib.mjs";

let tmp, eddy, server, clients = [];
before(async () => {
  tmp = tempDir();
  eddy = await startEddy({ bin: buildEddy(tmp.dir), dir: tmp.dir });
  server = sdk(eddy);
});
after(async () => {
  for (const c of clients) c.disconnect();
  await eddy?.kill();
  tmp?.cleanup();
});

/** An auth endpoint built with the SDK's authorizeChannel, over real HTTP. */
async function authEndpoint(users = {}) {
  const srv = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const p = new URLSearchParams(body);
      const user = users[req.headers["x-user"]];
      const auth = user
        ? server.authorizeChannel(p.get("socket_id"), p.get("channel_name"), user)
        : server.authorizeChannel(p.get("socket_id"), p.get("channel_name"));
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify(auth));
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  after(() => srv.close());
  const url = `http://127.0.0.1:${srv.address().port}/pusher/auth`;
  // pusher-js's own HTTP authoriser is the browser's; in Node the
  // customHandler posts to the same endpoint with fetch.
  return (who) => async ({ socketId, channelName }, cb) => {
    try {
      const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded", "x-user": who ?? "" }, body: new URLSearchParams({ socket_id: socketId, channel_name: channelName }) });
      cb(null, await r.json());
    } catch (e) {
      cb(e, null);
    }
  };
}

function track(c) {
  clients.push(c);
  return c;
}

test("public channel: trigger to one and to many channels, triggerBatch", async () => {
  const p = track(client(eddy));
  await connected(p);
  assert.match(p.connection.socket_id, /^\d+\.\d+$/);
  const a = p.subscribe("news");
  const b = p.subscribe("sport");
  await Promise.all([subscribed(a), subscribed(b)]);
  const gotA = next(a.bind.bind(a), "headline");
  await server.trigger("news", "headline", { title: "one" });
  assert.deepEqual(await gotA, { title: "one" });

  const both = [next(a.bind.bind(a), "flash"), next(b.bind.bind(b), "flash")];
  await server.trigger(["news", "sport"], "flash", { n: 2 });
  assert.deepEqual(await Promise.all(both), [{ n: 2 }, { n: 2 }]);

  const batch = [next(a.bind.bind(a), "b1"), next(b.bind.bind(b), "b2")];
  await server.triggerBatch([{ channel: "news", name: "b1", data: { n: 3 } }, { channel: "sport", name: "b2", data: { n: 4 } }]);
  assert.deepEqual(await Promise.all(batch), [{ n: 3 }, { n: 4 }]);
});

test("private channel through an auth endpoint built with authorizeChannel; client events not echoed", async () => {
  const auth = await authEndpoint();
  const p1 = track(client(eddy, { authorizer: auth() }));
  const p2 = track(client(eddy, { authorizer: auth() }));
  const c1 = p1.subscribe("private-orders");
  const c2 = p2.subscribe("private-orders");
  await Promise.all([subscribed(c1), subscribed(c2)]);
  const got = next(c2.bind.bind(c2), "client-typing");
  let echoed = false;
  c1.bind("client-typing", () => (echoed = true));
  assert.equal(c1.trigger("client-typing", { who: "p1" }), true);
  assert.deepEqual(await got, { who: "p1" });
  // A server event sent after it arrives after it: had the echo come, it would be here.
  const after = next(c1.bind.bind(c1), "marker");
  await server.trigger("private-orders", "marker", {});
  await after;
  assert.equal(echoed, false);
});

test("presence: members, member_added/removed, one member per user, users and channel queries", async () => {
  const auth = await authEndpoint({ ann: { user_id: "ann", user_info: { name: "Ann" } }, bo: { user_id: "bo", user_info: { name: "Bo" } } });
  const ann = track(client(eddy, { authorizer: auth("ann") }));
  const room = ann.subscribe("presence-room");
  const members = await subscribed(room);
  assert.equal(members.count, 1);
  assert.deepEqual(members.me, { id: "ann", info: { name: "Ann" } });

  const added = next(room.bind.bind(room), "pusher:member_added");
  const bo1 = track(client(eddy, { authorizer: auth("bo") }));
  const bo1room = bo1.subscribe("presence-room");
  await subscribed(bo1room);
  assert.deepEqual(await added, { id: "bo", info: { name: "Bo" } });
  // Bo's second tab is not a second member.
  const bo2 = track(client(eddy, { authorizer: auth("bo") }));
  const m2 = await subscribed(bo2.subscribe("presence-room"));
  assert.equal(m2.count, 2);

  const users = await (await server.get({ path: "/channels/presence-room/users" })).json();
  assert.deepEqual(users.users.map((u) => u.id).sort(), ["ann", "bo"]);
  const info = await (await server.get({ path: "/channels/presence-room", params: { info: "user_count,subscription_count" } })).json();
  assert.equal(info.occupied, true);
  assert.equal(info.user_count, 2);
  assert.equal(info.subscription_count, 3);
  const list = await (await server.get({ path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count" } })).json();
  assert.deepEqual(list.channels["presence-room"], { user_count: 2 });

  let removedEarly = false;
  room.bind("pusher:member_removed", () => (removedEarly = true));
  bo1.disconnect();
  await eventually("bo's first tab has left", async () => (await (await server.get({ path: "/channels/presence-room", params: { info: "subscription_count" } })).json()).subscription_count === 2);
  assert.equal(removedEarly, false, "member_removed while bo still had a tab");
  const removed = next(room.bind.bind(room), "pusher:member_removed");
  bo2.disconnect();
  assert.deepEqual(await removed, { id: "bo", info: { name: "Bo" } });
  assert.equal(room.members.count, 1);
});

test("encrypted channel: pusher-js decrypts what the SDK encrypted; eddy only relays ciphertext", async () => {
  const auth = await authEndpoint();
  const p = track(client(eddy, { authorizer: auth() }));
  const ch = p.subscribe("private-encrypted-vault");
  await subscribed(ch);
  // A plain subscriber of the same channel (public Pusher API) sees what eddy relays.
  const spy = track(client(eddy, { authorizer: async ({ socketId, channelName }, cb) => cb(null, server.authorizeChannel(socketId, channelName)) }));
  const raw = [];
  spy.connection.bind("message", (m) => { if (m.channel === "private-encrypted-vault") raw.push(m); });
  await connected(spy);
  spy.send_event("pusher:subscribe", { channel: "private-encrypted-vault", auth: server.authorizeChannel(spy.connection.socket_id, "private-encrypted-vault").auth });
  await eventually("spy subscribed", () => raw.some((m) => m.event === "pusher_internal:subscription_succeeded"));
  const got = next(ch.bind.bind(ch), "secret");
  await server.trigger("private-encrypted-vault", "secret", { pin: "4711-plaintext" });
  assert.deepEqual(await got, { pin: "4711-plaintext" });
  await eventually("spy got the event", () => raw.some((m) => m.event === "secret"));
  const relayed = JSON.stringify(raw.find((m) => m.event === "secret"));
  assert.ok(!relayed.includes("4711"), `eddy relayed plaintext: ${relayed}`);
  const body = raw.find((m) => m.event === "secret").data;
  const parsed = typeof body === "string" ? JSON.parse(body) : body;
  assert.ok(parsed.nonce && parsed.ciphertext, `relayed ${relayed}`);
});

test("user sign-in and terminateUserConnections", async () => {
  const p = track(client(eddy, { userAuthenticator: async ({ socketId }, cb) => cb(null, server.authenticateUser(socketId, { id: "zoe" })) }));
  await connected(p);
  const errors = [];
  p.connection.bind("message", (m) => { if (m.event === "pusher:subscription_error" || m.event === "pusher:error") errors.push(m); });
  p.signin();
  await eventually("signed in", () => p.user.user_data?.id === "zoe");
  await eventually("#server-to-user channel subscribed", () => p.user.serverToUserChannel?.subscribed === true);
  assert.deepEqual(errors, []);
  const bystander = track(client(eddy));
  await connected(bystander);
  const closed = new Promise((r) => p.connection.bind("state_change", (s) => { if (s.current !== "connected") r(s.current); }));
  await server.terminateUserConnections("zoe");
  assert.notEqual(await closed, "connected");
  assert.equal(bystander.connection.state, "connected");
});

test("refusals: wrong secret, unknown key, stale timestamp (SDK), unknown app key (pusher-js)", async () => {
  const wrong = sdk(eddy, { secret: "not-the-secret" });
  await assert.rejects(wrong.trigger("news", "x", {}), (e) => e.status === 401 && /auth_signature/.test(e.body));
  const unknown = sdk(eddy, { key: "nokey" });
  await assert.rejects(unknown.trigger("news", "x", {}), (e) => e.status === 401 && /auth_key/.test(e.body));
  const realNow = Date.now;
  Date.now = () => realNow() - 20 * 60 * 1000;
  try {
    await assert.rejects(server.trigger("news", "x", {}), (e) => e.status === 401 && /auth_timestamp/.test(e.body));
  } finally {
    Date.now = realNow;
  }
  const bad = track(client(eddy, { key: "nokey" }));
  const err = await next(bad.connection.bind.bind(bad.connection), "error");
  assert.equal(err.data?.code ?? err.error?.data?.code, 4001);
});

test("a rejected event name answers 400 with the reason", async () => {
  await assert.rejects(server.trigger("news", "pusher:forged", {}), (e) => e.status === 400 && /reserved/.test(e.body));
  await assert.rejects(server.trigger("bad,name", "x", {}), (e) => e.status === 400 && /Eddy channel names do not/.test(e.body));
});
