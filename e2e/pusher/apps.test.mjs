// One Eddy app other than the default one, end to end with the real
// libraries: the app is created through the apps API with the operator
// key, pusher-js connects with the app's own Pusher key, the pusher SDK
// triggers with the app's id, key and secret, and the default app's
// pusher-js client on the same channel name gets none of it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import Pusher from "pusher";
import { tempDir, buildEddy, startEddy, sdk, client, next, connected, subscribed, KEY } from "./lib.mjs";

const OPERATOR_KEY = "pusher-e2e-operator-key-0123456789";

let tmp, eddy, clients = [];
before(async () => {
  tmp = tempDir();
  eddy = await startEddy({ bin: buildEddy(tmp.dir), dir: tmp.dir, extra: [`operator_key: "${OPERATOR_KEY}"`] });
});
after(async () => {
  for (const c of clients) c.disconnect();
  await eddy?.kill();
  tmp?.cleanup();
});

function track(c) {
  clients.push(c);
  return c;
}

/** Creates an app through the apps API; answers its generated keys. */
async function createApp(id) {
  const r = await fetch(`${eddy.url}/api/v1/apps`, {
    method: "POST",
    headers: { Authorization: `Bearer ${OPERATOR_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ id, name: `App ${id}` }),
  });
  const body = await r.text();
  assert.equal(r.status, 201, `create app ${id}: ${body}`);
  return JSON.parse(body);
}

/** Every event a channel gets, in order, as [name, data]. */
function record(channel) {
  const got = [];
  channel.bind_global((name, data) => {
    if (!name.startsWith("pusher:")) got.push([name, data]);
  });
  return got;
}

test("an app created through the apps API is a Pusher app of its own", async () => {
  const app = await createApp("shop");
  assert.ok(app.pusher?.key && app.pusher?.secret, `no Pusher credentials in ${JSON.stringify(app)}`);
  assert.notEqual(app.pusher.key, KEY);

  const shopServer = new Pusher({ appId: app.id, key: app.pusher.key, secret: app.pusher.secret, host: "127.0.0.1", port: String(eddy.port), useTLS: false });
  const defServer = sdk(eddy);

  const shop = track(client(eddy, { key: app.pusher.key }));
  const def = track(client(eddy));
  await Promise.all([connected(shop), connected(def)]);
  const shopNews = shop.subscribe("news");
  const defNews = def.subscribe("news");
  await Promise.all([subscribed(shopNews), subscribed(defNews)]);
  const shopGot = record(shopNews);
  const defGot = record(defNews);

  // The app's trigger reaches the app's client.
  const shopNext = next(shopNews.bind.bind(shopNews), "sale");
  await shopServer.trigger("news", "sale", { item: "hat" });
  assert.deepEqual(await shopNext, { item: "hat" });

  // The default app's trigger on the same channel name reaches the default
  // client; it is the first event that client gets, so the app's came not.
  const defNext = next(defNews.bind.bind(defNews), "headline");
  await defServer.trigger("news", "headline", { text: "default" });
  assert.deepEqual(await defNext, { text: "default" });
  // A second app event after it: the app's client has it, and still none of the default app's.
  const shopNext2 = next(shopNews.bind.bind(shopNews), "sale");
  await shopServer.trigger("news", "sale", { item: "scarf" });
  assert.deepEqual(await shopNext2, { item: "scarf" });

  assert.deepEqual(defGot, [["headline", { text: "default" }]], "the default app's client got another app's event");
  assert.deepEqual(shopGot, [["sale", { item: "hat" }], ["sale", { item: "scarf" }]], "the app's client got the default app's event");

  // The app's channel, asked through the app's own HTTP API, has its one subscriber.
  const r = await shopServer.get({ path: "/channels/news", params: { info: "subscription_count" } });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).subscription_count, 1);

  // Only the app's own secret signs for it.
  const forged = new Pusher({ appId: app.id, key: app.pusher.key, secret: "not-the-secret", host: "127.0.0.1", port: String(eddy.port), useTLS: false });
  await assert.rejects(forged.trigger("news", "sale", { item: "forged" }), (e) => e.status === 401);
});
