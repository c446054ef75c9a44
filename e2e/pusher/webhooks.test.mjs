// Pusher-format webhooks caused by pusher-js clients and checked the way a
// backend written for Pusher checks them: the official SDK's webhook().
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { tempDir, buildEddy, startEddy, sdk, client, connected, subscribed, eventually } from "./lib.mjs";

let tmp, eddy, server, receiver, url;
const events = [];
let invalid = 0;
let clients = [];

before(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const hook = server.webhook({ headers: req.headers, rawBody: body });
      if (hook.isValid()) events.push(...hook.getEvents());
      else invalid++;
      res.end("ok");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${receiver.address().port}/pusher/webhooks`;
  tmp = tempDir();
  // No key or secret in the entry: they default to pusher_key/pusher_secret.
  eddy = await startEddy({
    bin: buildEddy(tmp.dir),
    dir: tmp.dir,
    extra: [
      "webhook_window: 50ms",
      "webhooks:",
      `  - url: "${url}"`,
      "    format: pusher",
      "    events: [channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss]",
    ],
  });
  server = sdk(eddy);
});
after(async () => {
  for (const c of clients) c.disconnect();
  await eddy?.kill();
  tmp?.cleanup();
  receiver?.close();
});

const seen = (pred) => events.some(pred);

/** Signs private and presence subscriptions with the SDK, in process. */
function authorizer(user) {
  return ({ socketId, channelName }, cb) =>
    cb(null, channelName.startsWith("presence-") ? server.authorizeChannel(socketId, channelName, user) : server.authorizeChannel(socketId, channelName));
}

test("every Pusher webhook event, validated by the pusher SDK", async () => {
  const a = client(eddy, { authorizer: authorizer({ user_id: "ann", user_info: { name: "Ann" } }) });
  const b = client(eddy, { authorizer: authorizer({ user_id: "bo" }) });
  clients = [a, b];
  await Promise.all([connected(a), connected(b)]);

  // cache_miss and channel_occupied: a cache channel nobody published to.
  await subscribed(a.subscribe("cache-scores"));
  await eventually("cache_miss for cache-scores", () => seen((e) => e.name === "cache_miss" && e.channel === "cache-scores"));
  await eventually("channel_occupied for cache-scores", () => seen((e) => e.name === "channel_occupied" && e.channel === "cache-scores"));

  // client_event on a private channel, with its data as the string Pusher sends.
  const pa = a.subscribe("private-orders");
  const pb = b.subscribe("private-orders");
  await Promise.all([subscribed(pa), subscribed(pb)]);
  assert.equal(pa.trigger("client-typing", { who: "ann" }), true);
  await eventually("client_event", () => seen((e) => e.name === "client_event" && e.channel === "private-orders"));
  const ce = events.find((e) => e.name === "client_event");
  assert.equal(ce.event, "client-typing");
  assert.deepEqual(JSON.parse(ce.data), { who: "ann" });
  assert.equal(ce.socket_id, a.connection.socket_id);

  // member_added per user, then member_removed and channel_vacated as they go.
  await subscribed(a.subscribe("presence-room"));
  await eventually("member_added ann", () => seen((e) => e.name === "member_added" && e.channel === "presence-room" && e.user_id === "ann"));
  a.unsubscribe("presence-room");
  await eventually("member_removed ann", () => seen((e) => e.name === "member_removed" && e.channel === "presence-room" && e.user_id === "ann"));
  await eventually("channel_vacated presence-room", () => seen((e) => e.name === "channel_vacated" && e.channel === "presence-room"));
  assert.equal(invalid, 0, "a webhook the SDK did not accept");
});
