// A scripted stand-in for the Eddy server (ws WebSocketServer) to test client
// logic in isolation: auth, subscribe (with since/recovery), publish, batching.
import { WebSocketServer } from "ws";

function claims(token) {
  try {
    return JSON.parse(Buffer.from(token.split(".")[1], "base64url"));
  } catch {
    return null;
  }
}

export async function startFake(opts = {}) {
  const wss = new WebSocketServer({ port: opts.port ?? 0, host: "127.0.0.1" });
  await new Promise((r) => wss.once("listening", r));
  const fake = {
    url: `ws://127.0.0.1:${wss.address().port}/ws`,
    port: wss.address().port,
    epoch: "E1",
    channels: new Map(), // name -> { offset, history: [] }
    conns: new Set(),
    frames: [], // every frame received: { conn, f }
    hook: null, // (conn, f) => true to swallow the frame
    batch: true,
    chan(name) {
      let c = this.channels.get(name);
      if (!c) this.channels.set(name, (c = { offset: 0, history: [] }));
      return c;
    },
    // Appends a message to a channel's stream and sends it to subscribers.
    publish(channel, event, data, user) {
      const c = this.chan(channel);
      const msg = { type: "message", channel, event, data, id: `m${c.offset + 1}`, ts: Date.now(), offset: ++c.offset, epoch: this.epoch };
      if (user) msg.user = user;
      c.history.push(msg);
      for (const conn of this.conns) if (conn.subs.has(channel)) conn.sendFrames([msg]);
      return msg;
    },
    dropAll(code) {
      for (const conn of this.conns) code ? conn.ws.close(code, "bye") : conn.ws.terminate();
    },
    waitFrame(pred, timeout = 5000) {
      return new Promise((resolve, reject) => {
        const t0 = Date.now();
        const iv = setInterval(() => {
          const hit = this.frames.find((x) => pred(x.f, x.conn));
          if (hit) {
            clearInterval(iv);
            resolve(hit.f);
          } else if (Date.now() - t0 > timeout) {
            clearInterval(iv);
            reject(new Error("waitFrame timed out"));
          }
        }, 10);
      });
    },
    close() {
      for (const conn of this.conns) conn.ws.terminate();
      return new Promise((r) => wss.close(r));
    },
  };

  wss.on("connection", (ws) => {
    const conn = {
      ws,
      user: "",
      ready: false,
      subs: new Set(),
      sendFrames(list) {
        if (ws.readyState !== 1) return;
        if (fake.batch) ws.send(list.map((f) => JSON.stringify(f)).join("\n"));
        else for (const f of list) ws.send(JSON.stringify(f));
      },
    };
    fake.conns.add(conn);
    ws.on("close", () => fake.conns.delete(conn));
    ws.on("message", (raw) => {
      const f = JSON.parse(String(raw));
      fake.frames.push({ conn, f });
      if (fake.hook && fake.hook(conn, f)) return;
      if (!conn.ready) {
        const c = f.type === "auth" ? claims(f.token) : null;
        if (!c || !c.sub || (c.exp && c.exp * 1000 < Date.now())) {
          conn.sendFrames([{ type: "error", code: "unauthorized", message: "bad token" }]);
          ws.close(4001, "unauthorized");
          return;
        }
        conn.ready = true;
        conn.user = c.sub;
        conn.sendFrames([{ type: "ready", conn: `c${fake.conns.size}`, user: c.sub }]);
        return;
      }
      const reply = (r) => conn.sendFrames([{ ...r, id: f.id }]);
      switch (f.type) {
        case "subscribe": {
          if (f.channel.startsWith("private:")) return reply({ type: "error", code: "forbidden", message: "no" });
          conn.subs.add(f.channel);
          const c = fake.chan(f.channel);
          const r = { type: "subscribed", channel: f.channel, epoch: fake.epoch, offset: c.offset };
          if (f.since) {
            const ok = f.since.epoch === fake.epoch && c.history.length > 0 ? c.history[0].offset <= f.since.offset + 1 : f.since.epoch === fake.epoch;
            r.recovered = ok;
            const missed = ok ? c.history.filter((m) => m.offset > f.since.offset) : [];
            return conn.sendFrames([{ ...r, id: f.id }, ...missed]);
          }
          return reply(r);
        }
        case "unsubscribe":
          if (!conn.subs.delete(f.channel)) return reply({ type: "error", code: "not_found", message: "not subscribed" });
          return reply({ type: "unsubscribed", channel: f.channel });
        case "publish": {
          if (f.channel.startsWith("ro:")) return reply({ type: "error", code: "forbidden", message: "publish not allowed" });
          const m = fake.publish(f.channel, f.event, f.data, conn.user);
          return reply({ type: "ack", msg: m.id });
        }
        case "refresh": {
          const c = claims(f.token);
          return reply({ type: "refreshed", exp: c?.exp ?? 0 });
        }
        case "ping":
          return reply({ type: "pong" });
        case "presence":
          return reply({ type: "members", channel: f.channel, members: [{ user: conn.user, conn: "c1", info: {} }] });
        default:
          return reply({ type: "error", code: "bad_request", message: "unknown type" });
      }
    });
  });
  return fake;
}

/** Resolves with the first emission of `event` on `emitter` (our Eddy or Subscription). */
export function once(emitter, event, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeout);
    emitter.once(event, (...args) => {
      clearTimeout(t);
      resolve(args.length > 1 ? args : args[0]);
    });
  });
}

export function until(pred, timeout = 5000, what = "condition") {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const iv = setInterval(() => {
      let v;
      try {
        v = pred();
      } catch {
        v = false;
      }
      if (v) {
        clearInterval(iv);
        resolve(v);
      } else if (Date.now() - t0 > timeout) {
        clearInterval(iv);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 10);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
