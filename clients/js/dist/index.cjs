"use strict";
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// src/index.ts
var index_exports = {};
__export(index_exports, {
  Eddy: () => Eddy,
  EddyError: () => EddyError,
  RESERVED_EVENTS: () => RESERVED_EVENTS,
  SseSocket: () => SseSocket,
  Subscription: () => Subscription,
  backoffDelay: () => backoffDelay,
  decodeJwtExp: () => decodeJwtExp,
  default: () => Eddy,
  splitFrames: () => splitFrames,
  sseUrlFor: () => sseUrlFor
});
module.exports = __toCommonJS(index_exports);

// src/backoff.ts
function backoffDelay(attempt, base = 500, cap = 3e4, random = Math.random) {
  const exp = Math.min(cap, base * Math.pow(2, Math.max(0, attempt)));
  return Math.floor(random() * exp);
}

// src/emitter.ts
var Emitter = class {
  constructor() {
    this.listeners = /* @__PURE__ */ new Map();
  }
  /** Adds a listener and returns a function that removes it. */
  on(event, fn) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, set = /* @__PURE__ */ new Set());
    set.add(fn);
    return () => this.off(event, fn);
  }
  /** Adds a listener that is removed after its first call. */
  once(event, fn) {
    const wrapped = (...args) => {
      off();
      fn(...args);
    };
    const off = this.on(event, wrapped);
    return off;
  }
  /** Removes one listener, or every listener of `event` when `fn` is omitted. */
  off(event, fn) {
    const set = this.listeners.get(event);
    if (!set) return;
    if (fn) set.delete(fn);
    if (!fn || set.size === 0) this.listeners.delete(event);
  }
  emit(event, ...args) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
};

// src/errors.ts
var EddyError = class extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "EddyError";
    this.code = code;
    if (status !== void 0) this.status = status;
  }
};

// src/frames.ts
function splitFrames(text) {
  const out = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    if (line) out.push(line);
    start = end + 1;
  }
  return out;
}

// src/jwt.ts
function base64UrlDecode(part) {
  let b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  while (b64.length % 4) b64 += "=";
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}
function decodeJwtExp(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return void 0;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1]));
    return typeof claims?.exp === "number" ? claims.exp : void 0;
  } catch {
    return void 0;
  }
}

// src/sse.ts
function sseUrlFor(wsUrl) {
  const u = new URL(wsUrl);
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  u.pathname = u.pathname.replace(/\/ws\/?$/, "").replace(/\/$/, "") + "/sse";
  return u.toString();
}
var CONNECTING = 0;
var OPEN = 1;
var CLOSED = 3;
var SseSocket = class {
  /** url is the SSE endpoint (see sseUrlFor). */
  constructor(url, fetchImpl) {
    this.url = url;
    this.readyState = CONNECTING;
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    /** The session id the server gave this stream (its POSTs' address). */
    this.session = "";
    this.ctrl = new AbortController();
    this.queue = [];
    this.posting = false;
    const f = fetchImpl ?? globalThis.fetch;
    if (!f) throw new Error("eddy: no fetch implementation for the SSE transport");
    this.fetchImpl = f;
    void this.run();
  }
  send(data) {
    if (this.readyState !== OPEN) throw new Error("eddy: SSE transport not open");
    this.queue.push(data);
    void this.flush();
  }
  close(code = 1e3, reason = "") {
    this.end(code, reason, false);
  }
  /** Cuts the stream without a close, as a network failure would (tests). */
  terminate() {
    this.end(1006, "sse stream terminated", true);
  }
  end(code, reason, error) {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.ctrl.abort();
    if (error) this.onerror?.({ message: reason });
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }
  async run() {
    let res;
    try {
      res = await this.fetchImpl(this.url, {
        headers: { accept: "text/event-stream" },
        cache: "no-store",
        signal: this.ctrl.signal
      });
    } catch (err) {
      this.end(1006, `sse: ${err instanceof Error ? err.message : String(err)}`, true);
      return;
    }
    if (!res.ok || !res.body) {
      this.end(1006, `sse: GET ${this.url} answered ${res.status}`, true);
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let data = [];
    try {
      for (; ; ) {
        const { value, done } = await reader.read();
        if (done || this.readyState === CLOSED) break;
        buf += decoder.decode(value, { stream: true });
        const lines = buf.split("\n");
        buf = lines.pop();
        for (let line of lines) {
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            if (data.length) this.dispatch(data.join("\n"));
            data = [];
            if (this.readyState === CLOSED) return;
          } else if (line.startsWith(":")) {
            if (this.readyState === OPEN) void this.post("");
          } else if (line.startsWith("data:")) {
            data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
          }
        }
      }
    } catch (err) {
      this.end(1006, `sse: ${err instanceof Error ? err.message : String(err)}`, true);
      return;
    }
    this.end(1006, "sse stream ended", true);
  }
  dispatch(text) {
    if (this.readyState === CONNECTING) {
      let f;
      try {
        f = JSON.parse(text);
      } catch {
      }
      if (f?.type !== "session" || !f.session) {
        this.end(1006, "sse: the stream did not start with a session", true);
        return;
      }
      this.session = f.session;
      this.readyState = OPEN;
      this.onopen?.({});
      return;
    }
    if (text.startsWith('{"type":"close"')) {
      try {
        const f = JSON.parse(text);
        this.end(Number(f.code) || 1006, String(f.reason ?? ""), false);
        return;
      } catch {
      }
    }
    this.onmessage?.({ data: text });
  }
  async flush() {
    if (this.posting || !this.queue.length) return;
    const body = this.queue.join("\n") + "\n";
    this.queue = [];
    this.posting = true;
    try {
      await this.post(body);
    } finally {
      this.posting = false;
    }
    if (this.readyState === OPEN) void this.flush();
  }
  async post(body) {
    try {
      const res = await this.fetchImpl(`${this.url}/${encodeURIComponent(this.session)}`, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=utf-8" },
        body,
        signal: this.ctrl.signal
      });
      await res.arrayBuffer().catch(() => void 0);
      if (!res.ok && res.status !== 404 && res.status !== 410 && this.readyState === OPEN) {
        this.end(1006, `sse: POST answered ${res.status}`, true);
      }
    } catch (err) {
      if (this.readyState === OPEN) this.end(1006, `sse: POST failed: ${err instanceof Error ? err.message : String(err)}`, true);
    }
  }
};

// src/subscription.ts
var RESERVED_EVENTS = /* @__PURE__ */ new Set([
  "subscribed",
  "unsubscribed",
  "presence",
  "error",
  "*"
]);
var TRANSIENT = /* @__PURE__ */ new Set(["timeout", "unavailable", "internal"]);
var Subscription = class {
  /** @internal Use `eddy.subscribe(channel)`. */
  constructor(host, channel) {
    this._state = "subscribing";
    this.events = new Emitter();
    this.everSubscribed = false;
    this.inFlight = false;
    this.generation = 0;
    this.retryAttempt = 0;
    this.host = host;
    this.channel = channel;
  }
  get state() {
    return this._state;
  }
  /** The position of the last message received (or of the subscribe reply). */
  get position() {
    return this.pos ? { ...this.pos } : void 0;
  }
  on(event, fn) {
    return this.events.on(event, fn);
  }
  once(event, fn) {
    return this.events.once(event, fn);
  }
  off(event, fn) {
    this.events.off(event, fn);
  }
  /**
   * Publishes to this channel (the token's `publish` claim must allow it).
   * Resolves with the server's ack; rejects with an EddyError whose `code`
   * is e.g. `forbidden`, `rejected`, `rate_limited`, `timeout`.
   * Subscribing is not needed to publish.
   */
  publish(event, data) {
    return this.host.call({ type: "publish", channel: this.channel, event, data: data === void 0 ? null : data }).then((f) => ({ id: String(f.msg ?? "") }));
  }
  /** The channel's current members (the `presence` request). */
  presence() {
    return this.host.call({ type: "presence", channel: this.channel }).then((f) => Array.isArray(f.members) ? f.members : []);
  }
  /**
   * Stops the subscription. Listeners stay attached but get nothing more.
   * Resolves once the server confirmed (at once when not connected).
   */
  unsubscribe() {
    if (this._state === "unsubscribed") return Promise.resolve();
    this.end();
    if (!this.host.isConnected) return Promise.resolve();
    return this.host.call({ type: "unsubscribe", channel: this.channel }).then(
      () => void 0,
      (err) => {
        if (["not_found", "disconnected", "closed"].includes(err.code)) return;
        throw err;
      }
    );
  }
  end() {
    this._state = "unsubscribed";
    this.generation++;
    this.inFlight = false;
    this.clearRetry();
    this.host.removeSubscription(this);
    this.events.emit("unsubscribed");
  }
  clearRetry() {
    if (this.retryTimer !== void 0) clearTimeout(this.retryTimer);
    this.retryTimer = void 0;
  }
  /** @internal Sends the subscribe request (with `since` when a position is known). */
  _send() {
    if (this._state === "unsubscribed" || this.inFlight) return;
    this.clearRetry();
    this._state = "subscribing";
    const gen = ++this.generation;
    const since = this.pos && this.pos.epoch ? { ...this.pos } : void 0;
    const frame = { type: "subscribe", channel: this.channel };
    if (since) frame.since = since;
    this.inFlight = true;
    this.host.requestNow(frame, {
      onReply: (reply) => {
        if (gen !== this.generation) return;
        this.inFlight = false;
        this.onSubscribed(reply, since !== void 0);
      },
      onError: (err) => {
        if (gen !== this.generation) return;
        this.inFlight = false;
        this.onSubscribeError(err);
      }
    });
  }
  /** @internal The connection dropped: the next `ready` resubscribes. */
  _disconnected() {
    if (this._state === "unsubscribed") return;
    this.generation++;
    this.inFlight = false;
    this.clearRetry();
    this._state = "subscribing";
  }
  onSubscribed(reply, sentSince) {
    const recovered = sentSince && reply.recovered === true;
    const epoch = typeof reply.epoch === "string" ? reply.epoch : void 0;
    const offset = typeof reply.offset === "number" ? reply.offset : void 0;
    if (!recovered && epoch !== void 0 && offset !== void 0) {
      this.pos = { epoch, offset };
    }
    this._state = "subscribed";
    this.retryAttempt = 0;
    const ev = {
      channel: this.channel,
      epoch: epoch ?? "",
      offset: offset ?? 0,
      resubscribed: this.everSubscribed,
      recovered
    };
    if (Array.isArray(reply.members)) ev.members = reply.members;
    this.everSubscribed = true;
    this.events.emit("subscribed", ev);
  }
  onSubscribeError(err) {
    if (err.code === "disconnected" || err.code === "closed") return;
    this.events.emit("error", err);
    if (TRANSIENT.has(err.code) && this._state !== "unsubscribed") {
      const delay = this.host.retryDelay(this.retryAttempt++);
      const timedOut = err.code === "timeout";
      this.retryTimer = setTimeout(() => {
        this.retryTimer = void 0;
        if (!this.host.isConnected) return;
        if (timedOut) this.host.requestNow({ type: "unsubscribe", channel: this.channel }, { onReply() {
        }, onError() {
        } });
        this._send();
      }, delay);
      return;
    }
    if (this._state !== "unsubscribed") this.end();
  }
  /** @internal */
  _onMessage(f) {
    if (this._state === "unsubscribed") return false;
    if (typeof f.offset === "number" && typeof f.epoch === "string") {
      if (this.pos && this.pos.epoch === f.epoch && f.offset <= this.pos.offset) return false;
      this.pos = { epoch: f.epoch, offset: f.offset };
    }
    const msg = f;
    if (!RESERVED_EVENTS.has(msg.event)) this.events.emit(msg.event, msg.data, msg);
    this.events.emit("*", msg.event, msg.data, msg);
    return true;
  }
  /**
   * @internal An unsolicited `subscribed` (no id): the server resynchronised
   * the subscription over the open connection after its broker came back
   * and the history no longer covered what was missed (`recovered:false`).
   * The position moves to the one given, and "subscribed" is emitted as
   * after a resubscribe that could not recover.
   */
  _onResynced(f) {
    if (this._state !== "subscribed") return;
    const epoch = typeof f.epoch === "string" ? f.epoch : void 0;
    const offset = typeof f.offset === "number" ? f.offset : void 0;
    if (epoch === void 0 || offset === void 0) return;
    this.pos = { epoch, offset };
    const ev = {
      channel: this.channel,
      epoch,
      offset,
      resubscribed: true,
      recovered: f.recovered === true
    };
    this.events.emit("subscribed", ev);
  }
  /** @internal */
  _onPresence(f) {
    if (this._state === "unsubscribed") return;
    this.events.emit("presence", {
      channel: this.channel,
      action: f.action,
      member: f.member
    });
  }
};

// src/client.ts
var OPEN2 = 1;
var MAX_TIMER = 2147483647;
var Eddy = class {
  constructor(url, options = {}) {
    this.preferred = 0;
    // index in transports of the one that last opened
    this._transport = "";
    this.events = new Emitter();
    this.subs = /* @__PURE__ */ new Map();
    this.pending = /* @__PURE__ */ new Map();
    this.ws = null;
    this._state = "disconnected";
    this.ready = false;
    this.usedInitialToken = false;
    this.nextId = 0;
    this.attempt = 0;
    this.readyAt = 0;
    // Date.now() of the current connection's ready, 0 when none
    this.connGen = 0;
    this.stopped = false;
    this._conn = "";
    this._user = "";
    this.url = url;
    this.opts = options;
    const WS = options.WebSocket ?? globalThis.WebSocket;
    const hasFetch = !!(options.fetch ?? globalThis.fetch);
    const wanted = options.transports ?? ["websocket", "sse"];
    for (const t of wanted) {
      if (t !== "websocket" && t !== "sse") throw new Error(`eddy: unknown transport ${JSON.stringify(t)}; use "websocket" or "sse"`);
    }
    this.transports = wanted.filter((t) => t === "websocket" ? !!WS : hasFetch || !!options.SSE);
    if (!this.transports.length) {
      throw new Error(
        wanted.includes("websocket") ? "eddy: no WebSocket implementation; pass the `WebSocket` option (e.g. from the ws package)" : "eddy: no fetch implementation for the SSE transport; pass the `fetch` option"
      );
    }
    if (!options.token && !options.getToken) throw new Error("eddy: a `token` or `getToken` option is required");
    this.WS = WS;
    this.token = options.token;
    const self = this;
    this.host = {
      get isConnected() {
        return self.ready;
      },
      request: (f, h) => this.request(f, h),
      requestNow: (f, h) => this.request(f, h, true),
      call: (f) => this.call(f),
      removeSubscription: (s) => {
        if (this.subs.get(s.channel) === s) this.subs.delete(s.channel);
      },
      retryDelay: (a) => this.backoff(a)
    };
    if (options.autoConnect !== false) {
      queueMicrotask(() => {
        if (this._state === "disconnected" && !this.stopped) this.connect();
      });
    }
  }
  /** The connection state. */
  get state() {
    return this._state;
  }
  /** The connection id from the last `ready`. */
  get conn() {
    return this._conn;
  }
  /** The transport of the open connection ("websocket" or "sse"), "" when none is open. */
  get transport() {
    return this._transport;
  }
  /** The user (`sub`) from the last `ready`. */
  get user() {
    return this._user;
  }
  on(event, fn) {
    return this.events.on(event, fn);
  }
  once(event, fn) {
    return this.events.once(event, fn);
  }
  off(event, fn) {
    this.events.off(event, fn);
  }
  /** Subscribes to a channel, or returns the existing subscription. */
  subscribe(channel) {
    let sub = this.subs.get(channel);
    if (sub) return sub;
    sub = new Subscription(this.host, channel);
    this.subs.set(channel, sub);
    if (this.ready) sub._send();
    return sub;
  }
  /** The live subscription of a channel, if any. */
  getSubscription(channel) {
    return this.subs.get(channel);
  }
  /** Publishes without subscribing: same as subscribe(channel).publish but keeps no subscription. */
  publish(channel, event, data) {
    return this.call({ type: "publish", channel, event, data: data === void 0 ? null : data }).then((f) => ({
      id: String(f.msg ?? "")
    }));
  }
  /** Round-trips a `ping` request. */
  ping() {
    return this.call({ type: "ping" }).then(() => void 0);
  }
  /** Starts connecting (after autoConnect: false, or after close()). */
  connect() {
    if (this.ws || this._state === "connecting") return;
    this.stopped = false;
    this.clearReconnect();
    void this.open();
  }
  /** Closes the connection for good: no reconnect; pending requests fail with `closed`. */
  close() {
    this.stopped = true;
    this.connGen++;
    this.clearReconnect();
    this.clearRefresh();
    this.failPending(() => true, "closed", "client closed");
    const ws = this.ws;
    this.ws = null;
    this._transport = "";
    this.ready = false;
    this.readyAt = 0;
    this.attempt = 0;
    this._state = "closed";
    for (const sub of this.subs.values()) sub._disconnected();
    if (ws) {
      try {
        ws.close(1e3, "client closed");
      } catch {
      }
      this.events.emit("disconnected", { code: 1e3, reason: "client closed", willReconnect: false });
    }
  }
  // ---- connection ----
  backoff(attempt) {
    return backoffDelay(attempt, this.opts.backoffBase ?? 500, this.opts.backoffCap ?? 3e4);
  }
  async nextToken() {
    if (this.opts.token && !this.usedInitialToken) {
      this.usedInitialToken = true;
      return this.opts.token;
    }
    if (this.opts.getToken) {
      const t = await this.opts.getToken();
      if (typeof t !== "string" || !t) throw new EddyError("unauthorized", "getToken returned no token");
      return t;
    }
    return this.token;
  }
  async open() {
    const gen = ++this.connGen;
    this._state = "connecting";
    this.lastError = void 0;
    this.events.emit("connecting");
    let token;
    try {
      token = await this.nextToken();
    } catch (err) {
      if (gen !== this.connGen) return;
      this.events.emit("error", err instanceof Error ? err : new Error(String(err)));
      this.scheduleReconnect();
      return;
    }
    if (gen !== this.connGen || this.stopped) return;
    this.token = token;
    const order = [this.preferred, ...this.transports.keys()].filter((v, i, a) => a.indexOf(v) === i);
    this.openTransport(token, order);
  }
  /**
   * Opens the first transport of order; one that closes before it opened
   * (blocked by a proxy, refused) gives way to the next at once. Only when
   * none opened does the connection count as failed.
   */
  openTransport(token, order) {
    const idx = order[0];
    const kind = this.transports[idx];
    const rest = order.slice(1);
    let ws;
    try {
      if (kind === "sse") {
        const SSE = this.opts.SSE ?? SseSocket;
        ws = new SSE(this.opts.sseUrl ?? sseUrlFor(this.url), this.opts.fetch);
      } else {
        ws = new this.WS(this.url);
      }
    } catch (err) {
      this.events.emit("error", err instanceof Error ? err : new Error(String(err)));
      if (rest.length) this.openTransport(token, rest);
      else this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    try {
      ws.binaryType = "arraybuffer";
    } catch {
    }
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.preferred = idx;
      this._transport = kind;
      this.send({ type: "auth", token });
    };
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.onData(ev.data);
    };
    ws.onerror = (ev) => {
      if (this.ws !== ws) return;
      const msg = ev && (ev.message || ev.error && ev.error.message) || `${kind} error`;
      this.events.emit("error", new Error(`eddy: ${msg}`));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      if (!opened && rest.length && !this.stopped) {
        this.ws = null;
        this.openTransport(token, rest);
        return;
      }
      this.onClose(ev.code, ev.reason);
    };
  }
  onClose(code, reason) {
    if (this.readyAt && Date.now() - this.readyAt >= (this.opts.stableAfter ?? 5e3)) this.attempt = 0;
    this.readyAt = 0;
    this.ws = null;
    this._transport = "";
    this.ready = false;
    this.clearRefresh();
    this.failPending((p) => p.sent, "disconnected", `connection closed (${code})`);
    for (const sub of this.subs.values()) sub._disconnected();
    let willReconnect;
    if (this.stopped) willReconnect = false;
    else if (code === 4001 || code === 4003) willReconnect = !!this.opts.getToken;
    else if (code === 4002 || code === 4011) willReconnect = false;
    else willReconnect = this.opts.reconnect !== false;
    if (!reason && this.lastError) reason = this.lastError.message;
    this.events.emit("disconnected", { code, reason: reason || "", willReconnect });
    if (willReconnect) {
      this.scheduleReconnect();
    } else {
      if (!this.stopped) this._state = "disconnected";
      this.failPending(() => true, "disconnected", `connection closed (${code})`);
    }
  }
  scheduleReconnect() {
    if (this.stopped) return;
    this.clearReconnect();
    const attempt = this.attempt++;
    const delay = this.backoff(attempt);
    this._state = "reconnecting";
    this.events.emit("reconnecting", { delay, attempt });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = void 0;
      if (!this.stopped) void this.open();
    }, delay);
  }
  clearReconnect() {
    if (this.reconnectTimer !== void 0) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = void 0;
  }
  onReady(f) {
    this.ready = true;
    this.readyAt = Date.now();
    this._state = "connected";
    this._conn = String(f.conn ?? "");
    this._user = String(f.user ?? "");
    this.scheduleRefresh();
    for (const sub of [...this.subs.values()]) sub._send();
    for (const [, p] of this.pending) {
      if (!p.sent) {
        p.sent = true;
        this.send(p.frame);
      }
    }
    this.events.emit("connected", { conn: this._conn, user: this._user });
  }
  // ---- token refresh ----
  scheduleRefresh(exp) {
    this.clearRefresh();
    if (!this.opts.getToken || !this.token) return;
    const expSec = exp ?? decodeJwtExp(this.token);
    if (expSec === void 0) return;
    const remaining = expSec * 1e3 - Date.now();
    const margin = Math.min(this.opts.refreshMargin ?? 3e4, remaining / 2);
    const delay = Math.min(MAX_TIMER, Math.max(0, remaining - margin));
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = void 0;
      void this.refresh();
    }, delay);
  }
  clearRefresh() {
    if (this.refreshTimer !== void 0) clearTimeout(this.refreshTimer);
    this.refreshTimer = void 0;
  }
  async refresh() {
    const gen = this.connGen;
    let token;
    try {
      token = await this.opts.getToken();
    } catch (err) {
      this.events.emit("error", err instanceof Error ? err : new Error(String(err)));
      this.retryRefresh(gen);
      return;
    }
    if (gen !== this.connGen || !this.ready) return;
    this.request(
      { type: "refresh", token },
      {
        onReply: (f) => {
          this.token = token;
          this.scheduleRefresh(typeof f.exp === "number" ? f.exp : void 0);
        },
        onError: (err) => {
          if (err.code === "disconnected" || err.code === "closed") return;
          this.events.emit("error", err);
          this.retryRefresh(gen);
        }
      },
      true
    );
  }
  retryRefresh(gen) {
    if (gen !== this.connGen || !this.ready) return;
    this.clearRefresh();
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = void 0;
      void this.refresh();
    }, 1e3);
  }
  // ---- frames and requests ----
  send(f) {
    const ws = this.ws;
    if (ws && ws.readyState === OPEN2) ws.send(JSON.stringify(f));
  }
  onData(data) {
    let text;
    if (typeof data === "string") text = data;
    else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) text = new TextDecoder().decode(data);
    else return;
    for (const line of splitFrames(text)) {
      let f;
      try {
        f = JSON.parse(line);
      } catch {
        this.events.emit("error", new Error(`eddy: malformed frame from server: ${line.slice(0, 100)}`));
        continue;
      }
      if (f && typeof f === "object" && typeof f.type === "string") this.onFrame(f);
    }
  }
  onFrame(f) {
    if (!this.ready) {
      if (f.type === "ready") this.onReady(f);
      else if (f.type === "error") {
        this.lastError = new EddyError(f.code ?? "internal", f.message);
        this.events.emit("error", this.lastError);
      }
      return;
    }
    if (typeof f.id === "number") {
      const p = this.pending.get(f.id);
      if (p) {
        this.pending.delete(f.id);
        clearTimeout(p.timer);
        if (f.type === "error") p.onError(new EddyError(f.code ?? "internal", f.message));
        else p.onReply(f);
        return;
      }
    }
    switch (f.type) {
      case "message": {
        const sub = this.subs.get(f.channel);
        if (sub && sub._onMessage(f)) this.events.emit("message", f);
        break;
      }
      case "presence":
        this.subs.get(f.channel)?._onPresence(f);
        break;
      case "subscribed":
        if (typeof f.id !== "number") this.subs.get(f.channel)?._onResynced(f);
        break;
      case "error":
        this.events.emit("error", new EddyError(f.code ?? "internal", f.message));
        break;
      default:
    }
  }
  /**
   * Registers a request. When connected it is sent at once; otherwise it
   * waits for the next `ready` (unless `onlyIfConnected`, which fails it with
   * `disconnected`). The timeout runs from now either way.
   */
  request(frame, handlers, onlyIfConnected = false) {
    if (this.stopped && this._state === "closed") {
      handlers.onError(new EddyError("closed", "client closed"));
      return;
    }
    if (onlyIfConnected && !this.ready) {
      handlers.onError(new EddyError("disconnected", "not connected"));
      return;
    }
    const id = ++this.nextId;
    const f = { ...frame, id };
    const timeout = this.opts.requestTimeout ?? 1e4;
    const timer = setTimeout(() => {
      if (this.pending.delete(id)) handlers.onError(new EddyError("timeout", `no reply to ${frame.type} within ${timeout} ms`));
    }, timeout);
    const p = { ...handlers, frame: f, sent: false, timer };
    this.pending.set(id, p);
    if (this.ready) {
      p.sent = true;
      this.send(f);
    }
  }
  call(frame) {
    return new Promise((resolve, reject) => this.request(frame, { onReply: resolve, onError: reject }));
  }
  failPending(which, code, message) {
    for (const [id, p] of [...this.pending]) {
      if (!which(p)) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.onError(new EddyError(code, message));
    }
  }
};
