import { backoffDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { EddyError } from "./errors.js";
import { splitFrames } from "./frames.js";
import { decodeJwtExp } from "./jwt.js";
import { SseSocket, sseUrlFor } from "./sse.js";
import { Subscription } from "./subscription.js";
const OPEN = 1;
const MAX_TIMER = 2147483647;
class Eddy {
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
    if (ws && ws.readyState === OPEN) ws.send(JSON.stringify(f));
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
}
export {
  Eddy
};
