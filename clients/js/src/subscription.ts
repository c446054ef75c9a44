import { backoffDelay } from "./backoff.js";
import { Emitter, type Listener } from "./emitter.js";
import { EddyError } from "./errors.js";
import type {
  Frame,
  Member,
  Message,
  PresenceEvent,
  PublishAck,
  StreamPosition,
  SubscribedEvent,
} from "./types.js";

/** Handlers for one request: called synchronously while its reply frame is handled. */
export interface RequestHandlers {
  onReply(frame: Frame): void;
  onError(err: EddyError): void;
}

/** What a Subscription needs from the client that owns it. */
export interface SubscriptionHost {
  readonly isConnected: boolean;
  /** Sends a request now, or when the connection is ready. */
  request(frame: Frame, handlers: RequestHandlers): void;
  /** Sends a request only if connected; otherwise fails it with `disconnected`. */
  requestNow(frame: Frame, handlers: RequestHandlers): void;
  call(frame: Frame): Promise<Frame>;
  removeSubscription(sub: Subscription): void;
  retryDelay(attempt: number): number;
}

/**
 * Event names a Subscription uses itself. A message whose application event
 * has one of these names reaches only the "*" listeners.
 */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  "subscribed",
  "unsubscribed",
  "presence",
  "error",
  "*",
]);

// Subscribe errors worth retrying on the same connection.
const TRANSIENT = new Set(["timeout", "unavailable", "internal"]);

export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";

/** One channel subscription, created by `eddy.subscribe(channel)`. */
export class Subscription {
  readonly channel: string;
  private _state: SubscriptionState = "subscribing";
  private readonly events = new Emitter();
  private readonly host: SubscriptionHost;
  private pos: StreamPosition | undefined;
  private everSubscribed = false;
  private inFlight = false;
  private generation = 0;
  private retryAttempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  /** @internal Use `eddy.subscribe(channel)`. */
  constructor(host: SubscriptionHost, channel: string) {
    this.host = host;
    this.channel = channel;
  }

  get state(): SubscriptionState {
    return this._state;
  }

  /** The position of the last message received (or of the subscribe reply). */
  get position(): StreamPosition | undefined {
    return this.pos ? { ...this.pos } : undefined;
  }

  /** Confirmed by the server; `recovered` says whether missed messages were filled in. */
  on(event: "subscribed", fn: (ev: SubscribedEvent) => void): () => void;
  /** The subscription ended (by `unsubscribe()` or a permanent subscribe error). */
  on(event: "unsubscribed", fn: () => void): () => void;
  /** A join or leave, in channels with join/leave events on. */
  on(event: "presence", fn: (ev: PresenceEvent) => void): () => void;
  /** A subscribe error (code `forbidden`, `bad_request`, ...). */
  on(event: "error", fn: (err: EddyError) => void): () => void;
  /** Every message, whatever its event. */
  on(event: "*", fn: (event: string, data: any, msg: Message) => void): () => void;
  /** Messages of one application event. */
  on<T = any>(event: string, fn: (data: T, msg: Message<T>) => void): () => void;
  on(event: string, fn: Listener): () => void {
    return this.events.on(event, fn);
  }

  once(event: string, fn: Listener): () => void {
    return this.events.once(event, fn);
  }

  off(event: string, fn?: Listener): void {
    this.events.off(event, fn);
  }

  /**
   * Publishes to this channel (the token's `publish` claim must allow it).
   * Resolves with the server's ack; rejects with an EddyError whose `code`
   * is e.g. `forbidden`, `rejected`, `rate_limited`, `timeout`.
   * Subscribing is not needed to publish.
   */
  publish(event: string, data?: unknown): Promise<PublishAck> {
    return this.host
      .call({ type: "publish", channel: this.channel, event, data: data === undefined ? null : data })
      .then((f) => ({ id: String(f.msg ?? "") }));
  }

  /** The channel's current members (the `presence` request). */
  presence(): Promise<Member[]> {
    return this.host
      .call({ type: "presence", channel: this.channel })
      .then((f) => (Array.isArray(f.members) ? (f.members as Member[]) : []));
  }

  /**
   * Stops the subscription. Listeners stay attached but get nothing more.
   * Resolves once the server confirmed (at once when not connected).
   */
  unsubscribe(): Promise<void> {
    if (this._state === "unsubscribed") return Promise.resolve();
    this.end();
    if (!this.host.isConnected) return Promise.resolve();
    return this.host.call({ type: "unsubscribe", channel: this.channel }).then(
      () => undefined,
      (err: EddyError) => {
        if (["not_found", "disconnected", "closed"].includes(err.code)) return;
        throw err;
      },
    );
  }

  private end(): void {
    this._state = "unsubscribed";
    this.generation++;
    this.inFlight = false;
    this.clearRetry();
    this.host.removeSubscription(this);
    this.events.emit("unsubscribed");
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** @internal Sends the subscribe request (with `since` when a position is known). */
  _send(): void {
    if (this._state === "unsubscribed" || this.inFlight) return;
    this.clearRetry();
    this._state = "subscribing";
    const gen = ++this.generation;
    // The server refuses `since` without an epoch.
    const since = this.pos && this.pos.epoch ? { ...this.pos } : undefined;
    const frame: Frame = { type: "subscribe", channel: this.channel };
    if (since) frame.since = since;
    this.inFlight = true;
    this.host.requestNow(frame, {
      onReply: (reply) => {
        if (gen !== this.generation) return;
        this.inFlight = false;
        this.onSubscribed(reply, since !== undefined);
      },
      onError: (err) => {
        if (gen !== this.generation) return;
        this.inFlight = false;
        this.onSubscribeError(err);
      },
    });
  }

  /** @internal The connection dropped: the next `ready` resubscribes. */
  _disconnected(): void {
    if (this._state === "unsubscribed") return;
    this.generation++;
    this.inFlight = false;
    this.clearRetry();
    this._state = "subscribing";
  }

  private onSubscribed(reply: Frame, sentSince: boolean): void {
    const recovered = sentSince && reply.recovered === true;
    const epoch = typeof reply.epoch === "string" ? reply.epoch : undefined;
    const offset = typeof reply.offset === "number" ? reply.offset : undefined;
    // After a successful recovery the missed messages follow this reply, so
    // the position must stay where it was or deduplication would drop them.
    if (!recovered && epoch !== undefined && offset !== undefined) {
      this.pos = { epoch, offset };
    }
    this._state = "subscribed";
    this.retryAttempt = 0;
    const ev: SubscribedEvent = {
      channel: this.channel,
      epoch: epoch ?? "",
      offset: offset ?? 0,
      resubscribed: this.everSubscribed,
      recovered,
    };
    if (Array.isArray(reply.members)) ev.members = reply.members;
    this.everSubscribed = true;
    this.events.emit("subscribed", ev);
  }

  private onSubscribeError(err: EddyError): void {
    if (err.code === "disconnected" || err.code === "closed") return; // handled by reconnect
    this.events.emit("error", err);
    if (TRANSIENT.has(err.code) && this._state !== "unsubscribed") {
      const delay = this.host.retryDelay(this.retryAttempt++);
      const timedOut = err.code === "timeout";
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (!this.host.isConnected) return;
        // A subscribe that timed out may still have succeeded: drop it first,
        // or the server would answer the retry with "already subscribed".
        if (timedOut) this.host.requestNow({ type: "unsubscribe", channel: this.channel }, { onReply() {}, onError() {} });
        this._send();
      }, delay);
      return;
    }
    if (this._state !== "unsubscribed") this.end();
  }

  /** @internal */
  _onMessage(f: Frame): boolean {
    if (this._state === "unsubscribed") return false;
    if (typeof f.offset === "number" && typeof f.epoch === "string") {
      if (this.pos && this.pos.epoch === f.epoch && f.offset <= this.pos.offset) return false;
      this.pos = { epoch: f.epoch, offset: f.offset };
    }
    const msg = f as unknown as Message;
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
  _onResynced(f: Frame): void {
    if (this._state !== "subscribed") return; // a subscribe in flight answers for itself
    const epoch = typeof f.epoch === "string" ? f.epoch : undefined;
    const offset = typeof f.offset === "number" ? f.offset : undefined;
    if (epoch === undefined || offset === undefined) return;
    this.pos = { epoch, offset };
    const ev: SubscribedEvent = {
      channel: this.channel,
      epoch,
      offset,
      resubscribed: true,
      recovered: f.recovered === true,
    };
    this.events.emit("subscribed", ev);
  }

  /** @internal */
  _onPresence(f: Frame): void {
    if (this._state === "unsubscribed") return;
    this.events.emit("presence", {
      channel: this.channel,
      action: f.action,
      member: f.member,
    } as PresenceEvent);
  }
}
