// The client falls back to the SSE transport when the WebSocket cannot
// open: the real server behind a proxy that, as some corporate proxies do,
// forwards plain HTTP (streamed responses included) but refuses every
// WebSocket upgrade.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { join } from "node:path";
import WebSocket from "ws";
import { Eddy } from "../dist/index.js";
import { EddyServer } from "../dist/server.js";
import { once, until } from "./helpers/fake-server.mjs";
import { API_KEY, SECRET, buildServer, startServer, tempDir, unavailableReason } from "./helpers/real-server.mjs";

// startBlockingProxy forwards HTTP to port and answers upgrades with 403.
function startBlockingProxy(port) {
  const stats = { upgradesRefused: 0, requests: 0 };
  const proxy = http.createServer((req, res) => {
    stats.requests++;
    const up = http.request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      res.flushHeaders();
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  proxy.on("upgrade", (req, socket) => {
    stats.upgradesRefused++;
    socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  return new Promise((resolve) =>
    proxy.listen(0, "127.0.0.1", () => resolve({ port: proxy.address().port, stats, close: () => proxy.close() })),
  );
}

const reason = unavailableReason();

describe("transport fallback against the real server", { skip: reason || false, timeout: 120_000 }, () => {
  let tmp, srv, api, proxy;
  const clients = [];

  before(async () => {
    tmp = tempDir();
    const bin = buildServer(tmp.dir);
    srv = await startServer({ bin, dataDir: join(tmp.dir, "data"), tmp: tmp.dir });
    api = new EddyServer({ apiUrl: srv.apiUrl, apiKey: API_KEY, secret: SECRET });
    proxy = await startBlockingProxy(srv.port);
  });

  after(async () => {
    for (const c of clients) c.close();
    proxy?.close();
    if (srv) await srv.kill();
    tmp?.cleanup();
  });

  test("WebSocket refused by a proxy: the client ends up on SSE and works", async () => {
    const url = `ws://127.0.0.1:${proxy.port}/ws`;
    const eddy = new Eddy(url, { WebSocket, token: api.createToken({ sub: "fb", ttl: 600, publish: ["chat:*"] }), requestTimeout: 5000 });
    clients.push(eddy);
    const ready = await once(eddy, "connected", 10_000);
    assert.equal(ready.user, "fb");
    assert.equal(eddy.transport, "sse");
    assert.ok(proxy.stats.upgradesRefused >= 1, "the WebSocket was tried first");
    const name = `chat:fallback-${process.pid}`;
    const room = eddy.subscribe(name);
    await once(room, "subscribed");
    const got = [];
    room.on("e", (d) => got.push(d));
    await room.publish("e", 1); // over a POST
    await api.publish(name, "e", 2); // from the backend
    await until(() => got.length === 2, 5000, "two messages");
    assert.deepEqual(got, [1, 2]);
  });

  test("transports: [\"websocket\"] does not fall back", async () => {
    const url = `ws://127.0.0.1:${proxy.port}/ws`;
    const eddy = new Eddy(url, {
      WebSocket,
      transports: ["websocket"],
      token: api.createToken({ sub: "nofb", ttl: 600 }),
      reconnect: false,
    });
    clients.push(eddy);
    eddy.on("error", () => {});
    const d = await once(eddy, "disconnected", 10_000);
    assert.equal(d.willReconnect, false);
    assert.equal(eddy.transport, "");
  });

  test("with the WebSocket open, the client stays on it", async () => {
    const eddy = new Eddy(srv.url, { WebSocket, token: api.createToken({ sub: "direct", ttl: 600 }) });
    clients.push(eddy);
    await once(eddy, "connected", 10_000);
    assert.equal(eddy.transport, "websocket");
  });
});
