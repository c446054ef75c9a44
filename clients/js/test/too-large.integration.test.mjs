// A publish refused for its size fails at once with too_large against the
// real server (the error carries the request id), not after requestTimeout.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import WebSocket from "ws";
import { Eddy } from "../dist/index.js";
import { EddyServer } from "../dist/server.js";
import { once } from "./helpers/fake-server.mjs";
import { API_KEY, SECRET, buildServer, startServer, tempDir, unavailableReason } from "./helpers/real-server.mjs";

const reason = unavailableReason();

describe("too large publish against the real server", { skip: reason || false, timeout: 120_000 }, () => {
  let tmp, srv, api;
  before(async () => {
    tmp = tempDir();
    srv = await startServer({ bin: buildServer(tmp.dir), dataDir: join(tmp.dir, "data"), tmp: tmp.dir, extraArgs: ["--max-message-bytes", "1024"] });
    api = new EddyServer({ apiUrl: srv.apiUrl, apiKey: API_KEY, secret: SECRET });
  });
  after(async () => {
    if (srv) await srv.kill();
    tmp?.cleanup();
  });

  test("room.publish over max_message_bytes rejects with too_large, not timeout", async () => {
    const eddy = new Eddy(srv.url, { WebSocket, requestTimeout: 60_000, token: api.createToken({ sub: "big", ttl: 600, publish: ["chat:*"] }) });
    try {
      await once(eddy, "connected");
      const room = eddy.subscribe("chat:big");
      await once(room, "subscribed");
      await assert.rejects(room.publish("e", { text: "x".repeat(2000) }), (err) => err.code === "too_large");
      const ok = await room.publish("e", { text: "small" });
      assert.ok(ok.id, "the connection still works after the refusal");
    } finally {
      eddy.close();
    }
  });
});
