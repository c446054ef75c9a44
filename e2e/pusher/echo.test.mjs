// laravel-echo with pusher-js, the Eddy JS client beside pusher-js on one
// channel, and pusher-js clients on three eddy nodes over a real redis-server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import PusherJS from "pusher-js";
import Echo from "laravel-echo";
import { Eddy } from "../../clients/js/dist/index.js";
import { EddyServer } from "../../clients/js/dist/server.js";
import { tempDir, buildEddy, startEddy, startRedis, sdk, client, next, connected, subscribed, eventually, KEY, SECRET, API_KEY } from "./lib.mjs";

let tmp, bin, eddy, server;
const closers = [];
before(async () => {
  tmp = tempDir();
  bin = buildEddy(tmp.dir);
  eddy = await startEddy({ bin, dir: tmp.dir });
  server = sdk(eddy);
});
after(async () => {
  for (const c of closers.reverse()) await c();
  await eddy?.kill();
  tmp?.cleanup();
});

// As a Laravel backend does: channel_data (the member) for presence channels only.
const authorize = (user) => async ({ socketId, channelName }, cb) =>
  cb(null, user && channelName.startsWith("presence-") ? server.authorizeChannel(socketId, channelName, user) : server.authorizeChannel(socketId, channelName));

function echo(user) {
  const e = new Echo({
    broadcaster: "pusher",
    Pusher: PusherJS,
    key: KEY,
    cluster: "eddy",
    wsHost: "127.0.0.1",
    wsPort: eddy.port,
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    channelAuthorization: { customHandler: authorize(user) },
  });
  closers.push(() => e.disconnect());
  return e;
}

test("laravel-echo: listen, private whisper, presence here/joining/leaving", async () => {
  const a = echo({ user_id: "1", user_info: { name: "Taylor" } });
  const got = new Promise((r) => a.channel("orders").listen(".OrderShipped", r));
  await connected(a.connector.pusher);
  await eventually("echo subscribed", () => a.connector.pusher.channel("orders")?.subscribed);
  await server.trigger("orders", "OrderShipped", { id: 7 });
  assert.deepEqual(await got, { id: 7 });

  // Laravel's namespaced event names arrive as broadcast.
  const ns = new Promise((r) => a.channel("orders").listen("OrderPaid", r));
  await server.trigger("orders", "App\\Events\\OrderPaid", { id: 8 });
  assert.deepEqual(await ns, { id: 8 });

  const b = echo({ user_id: "2", user_info: { name: "Jess" } });
  const heard = new Promise((r) => b.private("chat").listenForWhisper("typing", r));
  await eventually("b on private-chat", () => b.connector.pusher.channel("private-chat")?.subscribed);
  a.private("chat");
  await eventually("a on private-chat", () => a.connector.pusher.channel("private-chat")?.subscribed);
  a.private("chat").whisper("typing", { name: "Taylor" });
  assert.deepEqual(await heard, { name: "Taylor" });

  const here = new Promise((r) => a.join("lobby").here(r));
  assert.deepEqual(await here, [{ name: "Taylor" }]);
  const joining = new Promise((r) => a.join("lobby").joining(r));
  const c = echo({ user_id: "3", user_info: { name: "Abi" } });
  const cHere = new Promise((r) => c.join("lobby").here(r));
  assert.deepEqual((await cHere).map((u) => u.name).sort(), ["Abi", "Taylor"]);
  assert.deepEqual(await joining, { name: "Abi" });
  const leaving = new Promise((r) => a.join("lobby").leaving(r));
  c.leave("lobby");
  assert.deepEqual(await leaving, { name: "Abi" });
});

test("cross-protocol: the Eddy JS client and pusher-js on one channel get each other's publishes", async () => {
  const eddyServer = new EddyServer({ apiUrl: eddy.url, apiKey: API_KEY, secret: SECRET });
  const e = new Eddy(eddy.url.replace("http", "ws") + "/ws", { WebSocket, token: eddyServer.createToken({ sub: "eve", publish: ["*"] }) });
  closers.push(() => e.close());
  const p = client(eddy, { authorizer: authorize() });
  closers.push(() => p.disconnect());
  const pch = p.subscribe("private-shared");
  await subscribed(pch);
  const esub = e.subscribe("private-shared");
  await new Promise((r) => esub.on("subscribed", r));

  // Eddy's HTTP API and Eddy client publishes reach pusher-js.
  const fromApi = next(pch.bind.bind(pch), "from-eddy-api");
  await eddyServer.publish("private-shared", "from-eddy-api", { n: 1 });
  assert.deepEqual(await fromApi, { n: 1 });
  const fromClient = next(pch.bind.bind(pch), "from-eddy-client");
  await e.publish("private-shared", "from-eddy-client", { n: 2 });
  assert.deepEqual(await fromClient, { n: 2 });

  // The Pusher SDK's trigger and pusher-js client events reach the Eddy client.
  const got = new Promise((r) => esub.on("from-pusher", (data) => r(data)));
  await server.trigger("private-shared", "from-pusher", { n: 3 });
  assert.equal(await got, JSON.stringify({ n: 3 }), "a Pusher event's data is a string, as Pusher's protocol has it");
  const whisper = new Promise((r) => esub.on("client-hi", (data) => r(data)));
  pch.trigger("client-hi", { n: 4 });
  assert.deepEqual(await whisper, { n: 4 });
});

test("cluster: pusher-js clients on three nodes over redis-server", async () => {
  const redis = await startRedis();
  closers.push(() => redis.kill());
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    const n = await startEddy({ bin, dir: tmp.dir, name: `node${i}`, extra: [`redis: ["${redis.url}"]`, `node_name: node${i}`] });
    closers.push(() => n.kill());
    nodes.push(n);
  }
  const clients = nodes.map((n, i) => {
    const c = client(n, { authorizer: authorize({ user_id: `u${i}` }) });
    closers.push(() => c.disconnect());
    return c;
  });
  const chans = clients.map((c) => c.subscribe("presence-cluster"));
  await Promise.all(chans.map(subscribed));
  await eventually("every node sees three members", () => chans.every((ch) => ch.members.count === 3));

  // Channel queries answered by one node count every node's subscribers;
  // a channel occupied only on another node is listed.
  const news = clients[0].subscribe("cluster-news");
  await subscribed(news);
  const sdk1 = sdk(nodes[1]);
  const list = await (await sdk1.get({ path: "/channels", params: { filter_by_prefix: "cluster-", info: "subscription_count" } })).json();
  assert.deepEqual(list, { channels: { "cluster-news": { subscription_count: 1 } } });
  const presence = await (await sdk(nodes[2]).get({ path: "/channels/presence-cluster", params: { info: "user_count,subscription_count" } })).json();
  assert.deepEqual(presence, { occupied: true, user_count: 3, subscription_count: 3 });
  const news2 = await (await sdk1.get({ path: "/channels/cluster-news" })).json();
  assert.deepEqual(news2, { occupied: true });

  const sdk0 = sdk(nodes[0]);
  const got = chans.map((ch) => next(ch.bind.bind(ch), "tick"));
  await sdk0.trigger("presence-cluster", "tick", { from: "node0" });
  assert.deepEqual(await Promise.all(got), [{ from: "node0" }, { from: "node0" }, { from: "node0" }]);

  const whisper = [next(chans[0].bind.bind(chans[0]), "client-wave"), next(chans[1].bind.bind(chans[1]), "client-wave")];
  chans[2].trigger("client-wave", { from: "u2" });
  assert.deepEqual(await Promise.all(whisper), [{ from: "u2" }, { from: "u2" }]);

  const removed = next(chans[0].bind.bind(chans[0]), "pusher:member_removed");
  clients[2].disconnect();
  assert.equal((await removed).id, "u2");
  const users = await (await sdk(nodes[1]).get({ path: "/channels/presence-cluster/users" })).json();
  assert.deepEqual(users.users.map((u) => u.id).sort(), ["u0", "u1"]);
});
