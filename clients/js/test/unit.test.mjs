// Pure logic: backoff, frame splitting, JWT exp decoding, token signing, HTTP publish.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import http from "node:http";
import { backoffDelay, splitFrames, decodeJwtExp, EddyError } from "../dist/index.js";
import { EddyServer } from "../dist/server.js";

test("backoffDelay: full jitter within [0, min(cap, base*2^attempt))", () => {
  assert.equal(backoffDelay(0, 500, 30000, () => 0), 0);
  assert.equal(backoffDelay(0, 500, 30000, () => 0.999999), 499);
  assert.equal(backoffDelay(3, 500, 30000, () => 0.5), 2000);
  assert.equal(backoffDelay(6, 500, 30000, () => 0.999999), 29999); // 500*64 = 32000 > cap
  assert.equal(backoffDelay(1000, 500, 30000, () => 0.5), 15000); // no overflow past the cap
  for (let a = 0; a < 12; a++) {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(a);
      assert.ok(d >= 0 && d < Math.min(30000, 500 * 2 ** a), `attempt ${a}: ${d}`);
    }
  }
});

test("backoffDelay: jitter actually spreads delays", () => {
  const seen = new Set();
  for (let i = 0; i < 50; i++) seen.add(backoffDelay(5));
  assert.ok(seen.size > 10);
});

test("splitFrames: splits on \\n and skips empty lines", () => {
  assert.deepEqual(splitFrames('{"type":"a"}'), ['{"type":"a"}']);
  assert.deepEqual(splitFrames('{"type":"a"}\n{"type":"b"}\n'), ['{"type":"a"}', '{"type":"b"}']);
  assert.deepEqual(splitFrames('\n\n{"a":1}\r\n\n{"b":"x\\ny"}'), ['{"a":1}', '{"b":"x\\ny"}']);
  assert.deepEqual(splitFrames(""), []);
  const many = Array.from({ length: 128 }, (_, i) => JSON.stringify({ type: "message", offset: i })).join("\n");
  assert.equal(splitFrames(many).length, 128);
});

test("decodeJwtExp: reads exp without verifying; tolerates junk", () => {
  const s = new EddyServer({ secret: "x".repeat(32) });
  const tok = s.createToken({ sub: "alice", ttl: 120, info: { name: "Zoë 🚀" } });
  const exp = decodeJwtExp(tok);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(exp >= now + 119 && exp <= now + 121, String(exp));
  assert.equal(decodeJwtExp("not-a-jwt"), undefined);
  assert.equal(decodeJwtExp("a.b.c"), undefined);
  const noExp = `${Buffer.from("{}").toString("base64url")}.${Buffer.from('{"sub":"x"}').toString("base64url")}.sig`;
  assert.equal(decodeJwtExp(noExp), undefined);
});

test("createToken: HS256 JWT with the given claims", () => {
  const secret = "s".repeat(40);
  const s = new EddyServer({ secret });
  const tok = s.createToken({ sub: "bob", channels: ["chat:*"], publish: ["chat:lobby"], info: { n: 1 }, ttl: 60 });
  const [h, p, sig] = tok.split(".");
  assert.deepEqual(JSON.parse(Buffer.from(h, "base64url")), { alg: "HS256", typ: "JWT" });
  const claims = JSON.parse(Buffer.from(p, "base64url"));
  assert.equal(claims.sub, "bob");
  assert.deepEqual(claims.channels, ["chat:*"]);
  assert.deepEqual(claims.publish, ["chat:lobby"]);
  assert.deepEqual(claims.info, { n: 1 });
  assert.equal(claims.exp - claims.iat, 60);
  assert.equal(sig, createHmac("sha256", secret).update(`${h}.${p}`).digest("base64url"));
  assert.ok(!("channels" in JSON.parse(Buffer.from(s.createToken({ sub: "x" }).split(".")[1], "base64url"))));
  assert.throws(() => s.createToken({}), /sub/);
  assert.throws(() => new EddyServer({}).createToken({ sub: "x" }), /secret/);
});

test("EddyServer.publish: request shape, id, and error mapping", async (t) => {
  const seen = [];
  const srv = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body: JSON.parse(body) });
      const { channel } = JSON.parse(body);
      if (channel === "bad") {
        res.writeHead(403, { "content-type": "application/json" });
        res.end('{"error":{"code":"forbidden","message":"nope"}}');
      } else if (channel === "html") {
        res.writeHead(502);
        res.end("<html>bad gateway</html>");
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"id":"m-1"}');
      }
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  t.after(() => srv.close());
  const apiUrl = `http://127.0.0.1:${srv.address().port}/`;
  const s = new EddyServer({ apiUrl, apiKey: "k123" });
  assert.deepEqual(await s.publish("chat:lobby", "new-post", { text: "hi" }), { id: "m-1" });
  assert.deepEqual(seen[0], {
    method: "POST",
    url: "/api/v1/publish",
    auth: "Bearer k123",
    body: { channel: "chat:lobby", event: "new-post", data: { text: "hi" } },
  });
  await assert.rejects(s.publish("bad", "e", 1), (e) => e instanceof EddyError && e.code === "forbidden" && e.status === 403 && e.message === "nope");
  await assert.rejects(s.publish("html", "e", 1), (e) => e.code === "http" && e.status === 502);
  await assert.rejects(new EddyServer({ apiUrl: "http://127.0.0.1:1", apiKey: "k" }).publish("c", "e"), (e) => e.code === "unavailable");
});
