import { type Listener } from "./emitter.js";
import { type SseSocketConstructor } from "./sse.js";
import { Subscription } from "./subscription.js";
import type { DisconnectedEvent, Message, ReadyEvent, ReconnectingEvent, WebSocketConstructor } from "./types.js";
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
/**
 * A connection to an Eddy server. Connects at once (unless autoConnect is
 * false), reconnects with exponential backoff and full jitter, and
 * resubscribes every channel with `since` so missed messages are recovered.
 */
export declare class Eddy {
    readonly url: string;
    private readonly opts;
    private readonly WS;
    private readonly transports;
    private preferred;
    private _transport;
    private readonly events;
    private readonly subs;
    private readonly pending;
    private readonly host;
    private ws;
    private _state;
    private ready;
    private token;
    private usedInitialToken;
    private nextId;
    private attempt;
    private readyAt;
    private connGen;
    private stopped;
    private reconnectTimer;
    private refreshTimer;
    private lastError;
    private _conn;
    private _user;
    constructor(url: string, options?: EddyOptions);
    /** The connection state. */
    get state(): ConnectionState;
    /** The connection id from the last `ready`. */
    get conn(): string;
    /** The transport of the open connection ("websocket" or "sse"), "" when none is open. */
    get transport(): Transport | "";
    /** The user (`sub`) from the last `ready`. */
    get user(): string;
    on(event: "connecting", fn: () => void): () => void;
    on(event: "connected", fn: (ev: ReadyEvent) => void): () => void;
    on(event: "disconnected", fn: (ev: DisconnectedEvent) => void): () => void;
    on(event: "reconnecting", fn: (ev: ReconnectingEvent) => void): () => void;
    on(event: "error", fn: (err: Error) => void): () => void;
    /** Every message on every subscribed channel (after deduplication). */
    on(event: "message", fn: (msg: Message) => void): () => void;
    once(event: string, fn: Listener): () => void;
    off(event: string, fn?: Listener): void;
    /** Subscribes to a channel, or returns the existing subscription. */
    subscribe(channel: string): Subscription;
    /** The live subscription of a channel, if any. */
    getSubscription(channel: string): Subscription | undefined;
    /** Publishes without subscribing: same as subscribe(channel).publish but keeps no subscription. */
    publish(channel: string, event: string, data?: unknown): Promise<{
        id: string;
    }>;
    /** Round-trips a `ping` request. */
    ping(): Promise<void>;
    /** Starts connecting (after autoConnect: false, or after close()). */
    connect(): void;
    /** Closes the connection for good: no reconnect; pending requests fail with `closed`. */
    close(): void;
    private backoff;
    private nextToken;
    private open;
    /**
     * Opens the first transport of order; one that closes before it opened
     * (blocked by a proxy, refused) gives way to the next at once. Only when
     * none opened does the connection count as failed.
     */
    private openTransport;
    private onClose;
    private scheduleReconnect;
    private clearReconnect;
    private onReady;
    private scheduleRefresh;
    private clearRefresh;
    private refresh;
    private retryRefresh;
    private send;
    private onData;
    private onFrame;
    /**
     * Registers a request. When connected it is sent at once; otherwise it
     * waits for the next `ready` (unless `onlyIfConnected`, which fails it with
     * `disconnected`). The timeout runs from now either way.
     */
    private request;
    private call;
    private failPending;
}
