import { backoffDelay } from "./backoff.js";
import { Emitter, type Listener } from "./emitter.js";
import { EddyError } from "./errors.js";
import { splitFrames } from "./frames.js";
import { decodeJwtExp } from "./jwt.js";
import { SseSocket, sseUrlFor, type SseSocketConstructor } from "./sse.js";
import { Subscription, type RequestHandlers, type SubscriptionHost } from "./subscription.js";
import type {
  DisconnectedEvent,
  Frame,
  Message,
  ReadyEvent,
  ReconnectingEvent,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";

export interface EddyOptions {
  /** A JWT. Used for the first connection (and every one when there is no getToken). */
  token?: string;
  /**
   * Fetches a fresh JWT: on the first connection (unless `token` is given),
   * on every reconnect, and shortly before the current token's `exp` to
   * refresh it over the open connection.
   */
  getToken?: () => string | Promise<string>;
  /** A WebSocket implementation, e.g. the `ws` package in Node. Default: globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor | (new (url: string) => unknown);
  /**
   * The transports to try, in order, when connecting: a WebSocket, then the
   * SSE transport (an event stream plus POSTs) for networks that block
   * WebSockets. The one that last opened is tried first on a reconnect.
   * Default ["websocket", "sse"].
   */
  transports?: Transport[];
  /** The SSE endpoint. Default: the url with ws(s) as http(s) and a trailing /ws as /sse. */
  sseUrl?: string;
  /** fetch for the SSE transport. Default: globalThis.fetch. */
  fetch?: typeof fetch;
  /** The SSE transport's implementation (tests). Default: SseSocket. */
  SSE?: SseSocketConstructor;
  /** Connect right after construction (in a microtask). Default true; otherwise call connect(). */
  autoConnect?: boolean;
  /** Reconnect automatically after a drop. Default true. */
  reconnect?: boolean;
  /** Backoff base in ms (delay = random(0, min(cap, base * 2^attempt))). Default 500. */
  backoffBase?: number;
  /** Backoff cap in ms. Default 30000. */
  backoffCap?: number;
  /**
   * How long (ms) a connection must stay up for the backoff to start over
   * from `backoffBase`. Default 5000. A connection the server closes sooner
   * (a crash loop, a recovery it cannot serve) counts as a failed attempt,
   * so the delays keep growing instead of reconnecting in a tight loop.
   */
  stableAfter?: number;
  /** How long a request waits for its reply, in ms. Default 10000. */
  requestTimeout?: number;
  /** Refresh the token this long (ms) before it expires, at most half its remaining life. Default 30000. */
  refreshMargin?: number;
}

export type Transport = "websocket" | "sse";

export type ConnectionState = "disconnected" | "connecting" | "connected" | "reconnecting" | "closed";

interface Pending extends RequestHandlers {
  frame: Frame;
  sent: boolean;
  timer: ReturnType<typeof setTimeout>;
}

const OPEN = 1;
const MAX_TIMER = 2_147_483_647;

/**
 * A connection to an Eddy server. Connects at once (unless autoConnect is
 * false), reconnects with exponential backoff and full jitter, and
 * resubscribes every channel with `since` so missed messages are recovered.
 */
export class Eddy {
  readonly url: string;
  private readonly opts: EddyOptions;
  private readonly WS: WebSocketConstructor | undefined;
  private readonly transports: Transport[];
  private preferred = 0; // index in transports of the one that last opened
  private _transport: Transport | "" = "";
  private readonly events = new Emitter();
  private readonly subs = new Map<string, Subscription>();
  private readonly pending = new Map<number, Pending>();
  private readonly host: SubscriptionHost;
  private ws: WebSocketLike | null = null;
  private _state: ConnectionState = "disconnected";
  private ready = false;
  private token: string | undefined;
  private usedInitialToken = false;
  private nextId = 0;
  private attempt = 0;
  private readyAt = 0; // Date.now() of the current connection's ready, 0 when none
  private connGen = 0;
  private stopped = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private lastError: EddyError | undefined;
  private _conn = "";
  private _user = "";

  constructor(url: string, options: EddyOptions = {}) {
    this.url = url;
    this.opts = options;
    const WS = (options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket) as
      | WebSocketConstructor
      | undefined;
    const hasFetch = !!(options.fetch ?? (globalThis as { fetch?: unknown }).fetch);
    const wanted = options.transports ?? ["websocket", "sse"];
    for (const t of wanted) {
      if (t !== "websocket" && t !== "sse") throw new Error(`eddy: unknown transport ${JSON.stringify(t)}; use "websocket" or "sse"`);
    }
    // A transport this runtime cannot run is left out, unless nothing remains.
    this.transports = wanted.filter((t) => (t === "websocket" ? !!WS : hasFetch || !!options.SSE));
    if (!this.transports.length) {
      throw new Error(
        wanted.includes("websocket")
          ? "eddy: no WebSocket implementation; pass the `WebSocket` option (e.g. from the ws package)"
          : "eddy: no fetch implementation for the SSE transport; pass the `fetch` option",
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
      retryDelay: (a) => this.backoff(a),
    };
    // Deferred so that listeners added right after `new Eddy(...)` see "connecting".
    if (options.autoConnect !== false) {
      queueMicrotask(() => {
        if (this._state === "disconnected" && !this.stopped) this.connect();
      });
    }
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this._state;
  }

  /** The connection id from the last `ready`. */
  get conn(): string {
    return this._conn;
  }

  /** The transport of the open connection ("websocket" or "sse"), "" when none is open. */
  get transport(): Transport | "" {
    return this._transport;
  }

  /** The user (`sub`) from the last `ready`. */
  get user(): string {
    return this._user;
  }

  on(event: "connecting", fn: () => void): () => void;
  on(event: "connected", fn: (ev: ReadyEvent) => void): () => void;
  on(event: "disconnected", fn: (ev: DisconnectedEvent) => void): () => void;
  on(event: "reconnecting", fn: (ev: ReconnectingEvent) => void): () => void;
  on(event: "error", fn: (err: Error) => void): () => void;
  /** Every message on every subscribed channel (after deduplication). */
  on(event: "message", fn: (msg: Message) => void): () => void;
  on(event: string, fn: Listener): () => void {
    return this.events.on(event, fn);
  }

  once(event: string, fn: Listener): () => void {
    return this.events.once(event, fn);
  }

  off(event: string, fn?: Listener): void {
    this.events.off(event, fn);
  }

  /** Subscribes to a channel, or returns the existing subscription. */
  subscribe(channel: string): Subscription {
    let sub = this.subs.get(channel);
    if (sub) return sub;
    sub = new Subscription(this.host, channel);
    this.subs.set(channel, sub);
    if (this.ready) sub._send();
    return sub;
  }

  /** The live subscription of a channel, if any. */
  getSubscription(channel: string): Subscription | undefined {
    return this.subs.get(channel);
  }

  /** Publishes without subscribing: same as subscribe(channel).publish but keeps no subscription. */
  publish(channel: string, event: string, data?: unknown): Promise<{ id: string }> {
    return this.call({ type: "publish", channel, event, data: data === undefined ? null : data }).then((f) => ({
      id: String(f.msg ?? ""),
    }));
  }

  /** Round-trips a `ping` request. */
  ping(): Promise<void> {
    return this.call({ type: "ping" }).then(() => undefined);
  }

  /** Starts connecting (after autoConnect: false, or after close()). */
  connect(): void {
    if (this.ws || this._state === "connecting") return;
    this.stopped = false;
    this.clearReconnect();
    void this.open();
  }

  /** Closes the connection for good: no reconnect; pending requests fail with `closed`. */
  close(): void {
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
    this.attempt = 0; // a later connect() starts afresh
    this._state = "closed";
    for (const sub of this.subs.values()) sub._disconnected();
    if (ws) {
      try {
        ws.close(1000, "client closed");
      } catch {
        /* already closing */
      }
      this.events.emit("disconnected", { code: 1000, reason: "client closed", willReconnect: false });
    }
  }

  // ---- connection ----

  private backoff(attempt: number): number {
    return backoffDelay(attempt, this.opts.backoffBase ?? 500, this.opts.backoffCap ?? 30_000);
  }

  private async nextToken(): Promise<string> {
    if (this.opts.token && !this.usedInitialToken) {
      this.usedInitialToken = true;
      return this.opts.token;
    }
    if (this.opts.getToken) {
      const t = await this.opts.getToken();
      if (typeof t !== "string" || !t) throw new EddyError("unauthorized", "getToken returned no token");
      return t;
    }
    return this.token!;
  }

  private async open(): Promise<void> {
    const gen = ++this.connGen;
    this._state = "connecting";
    this.lastError = undefined;
    this.events.emit("connecting");
    let token: string;
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
    // The transport that last opened first, then the others in order.
    const order = [this.preferred, ...this.transports.keys()].filter((v, i, a) => a.indexOf(v) === i);
    this.openTransport(token, order);
  }

  /**
   * Opens the first transport of order; one that closes before it opened
   * (blocked by a proxy, refused) gives way to the next at once. Only when
   * none opened does the connection count as failed.
   */
  private openTransport(token: string, order: number[]): void {
    const idx = order[0]!;
    const kind = this.transports[idx]!;
    const rest = order.slice(1);
    let ws: WebSocketLike;
    try {
      if (kind === "sse") {
        const SSE = this.opts.SSE ?? SseSocket;
        ws = new SSE(this.opts.sseUrl ?? sseUrlFor(this.url), this.opts.fetch);
      } else {
        ws = new this.WS!(this.url);
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
      (ws as { binaryType?: string }).binaryType = "arraybuffer";
    } catch {
      /* not supported */
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
      const msg = (ev && (ev.message || (ev.error && ev.error.message))) || `${kind} error`;
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

  private onClose(code: number, reason: string): void {
    // Only a connection that stayed up resets the backoff (see stableAfter).
    if (this.readyAt && Date.now() - this.readyAt >= (this.opts.stableAfter ?? 5_000)) this.attempt = 0;
    this.readyAt = 0;
    this.ws = null;
    this._transport = "";
    this.ready = false;
    this.clearRefresh();
    this.failPending((p) => p.sent, "disconnected", `connection closed (${code})`);
    for (const sub of this.subs.values()) sub._disconnected();
    let willReconnect: boolean;
    if (this.stopped) willReconnect = false;
    else if (code === 4001 || code === 4003) willReconnect = !!this.opts.getToken;
    else if (code === 4002 || code === 4011) willReconnect = false; // a client bug; the app was deleted
    else willReconnect = this.opts.reconnect !== false;
    if (!reason && this.lastError) reason = this.lastError.message;
    this.events.emit("disconnected", { code, reason: reason || "", willReconnect });
    if (willReconnect) {
      this.scheduleReconnect();
    } else {
      if (!this.stopped) this._state = "disconnected";
      // Nothing will send the queued requests: fail them now.
      this.failPending(() => true, "disconnected", `connection closed (${code})`);
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.clearReconnect();
    const attempt = this.attempt++;
    const delay = this.backoff(attempt);
    this._state = "reconnecting";
    this.events.emit("reconnecting", { delay, attempt });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopped) void this.open();
    }, delay);
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private onReady(f: Frame): void {
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

  private scheduleRefresh(exp?: number): void {
    this.clearRefresh();
    if (!this.opts.getToken || !this.token) return;
    const expSec = exp ?? decodeJwtExp(this.token);
    if (expSec === undefined) return;
    const remaining = expSec * 1000 - Date.now();
    const margin = Math.min(this.opts.refreshMargin ?? 30_000, remaining / 2);
    const delay = Math.min(MAX_TIMER, Math.max(0, remaining - margin));
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refresh();
    }, delay);
  }

  private clearRefresh(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private async refresh(): Promise<void> {
    const gen = this.connGen;
    let token: string;
    try {
      token = await this.opts.getToken!();
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
          this.scheduleRefresh(typeof f.exp === "number" ? f.exp : undefined);
        },
        onError: (err) => {
          if (err.code === "disconnected" || err.code === "closed") return;
          this.events.emit("error", err);
          this.retryRefresh(gen);
        },
      },
      true,
    );
  }

  private retryRefresh(gen: number): void {
    if (gen !== this.connGen || !this.ready) return;
    this.clearRefresh();
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refresh();
    }, 1000);
  }

  // ---- frames and requests ----

  private send(f: Frame): void {
    const ws = this.ws;
    if (ws && ws.readyState === OPEN) ws.send(JSON.stringify(f));
  }

  private onData(data: unknown): void {
    let text: string;
    if (typeof data === "string") text = data;
    else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) text = new TextDecoder().decode(data as ArrayBuffer);
    else return;
    for (const line of splitFrames(text)) {
      let f: Frame;
      try {
        f = JSON.parse(line);
      } catch {
        this.events.emit("error", new Error(`eddy: malformed frame from server: ${line.slice(0, 100)}`));
        continue;
      }
      if (f && typeof f === "object" && typeof f.type === "string") this.onFrame(f);
    }
  }

  private onFrame(f: Frame): void {
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
        // Without an id: the server resynchronised the subscription by
        // itself after a broker outage and could not recover what was missed.
        if (typeof f.id !== "number") this.subs.get(f.channel)?._onResynced(f);
        break;
      case "error":
        this.events.emit("error", new EddyError(f.code ?? "internal", f.message));
        break;
      default:
      // unknown frames (or late replies to timed-out requests) are ignored
    }
  }

  /**
   * Registers a request. When connected it is sent at once; otherwise it
   * waits for the next `ready` (unless `onlyIfConnected`, which fails it with
   * `disconnected`). The timeout runs from now either way.
   */
  private request(frame: Frame, handlers: RequestHandlers, onlyIfConnected = false): void {
    if (this.stopped && this._state === "closed") {
      handlers.onError(new EddyError("closed", "client closed"));
      return;
    }
    if (onlyIfConnected && !this.ready) {
      handlers.onError(new EddyError("disconnected", "not connected"));
      return;
    }
    const id = ++this.nextId;
    const f: Frame = { ...frame, id };
    const timeout = this.opts.requestTimeout ?? 10_000;
    const timer = setTimeout(() => {
      if (this.pending.delete(id)) handlers.onError(new EddyError("timeout", `no reply to ${frame.type} within ${timeout} ms`));
    }, timeout);
    const p: Pending = { ...handlers, frame: f, sent: false, timer };
    this.pending.set(id, p);
    if (this.ready) {
      p.sent = true;
      this.send(f);
    }
  }

  private call(frame: Frame): Promise<Frame> {
    return new Promise((resolve, reject) => this.request(frame, { onReply: resolve, onError: reject }));
  }

  private failPending(which: (p: Pending) => boolean, code: string, message: string): void {
    for (const [id, p] of [...this.pending]) {
      if (!which(p)) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.onError(new EddyError(code, message));
    }
  }
}
