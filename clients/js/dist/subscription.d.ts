import { type Listener } from "./emitter.js";
import { EddyError } from "./errors.js";
import type { Frame, Member, Message, PresenceEvent, PublishAck, StreamPosition, SubscribedEvent } from "./types.js";
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
export declare const RESERVED_EVENTS: ReadonlySet<string>;
export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";
/** One channel subscription, created by `eddy.subscribe(channel)`. */
export declare class Subscription {
    readonly channel: string;
    private _state;
    private readonly events;
    private readonly host;
    private pos;
    private everSubscribed;
    private inFlight;
    private generation;
    private retryAttempt;
    private retryTimer;
    get state(): SubscriptionState;
    /** The position of the last message received (or of the subscribe reply). */
    get position(): StreamPosition | undefined;
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
    once(event: string, fn: Listener): () => void;
    off(event: string, fn?: Listener): void;
    /**
     * Publishes to this channel (the token's `publish` claim must allow it).
     * Resolves with the server's ack; rejects with an EddyError whose `code`
     * is e.g. `forbidden`, `rejected`, `rate_limited`, `timeout`.
     * Subscribing is not needed to publish.
     */
    publish(event: string, data?: unknown): Promise<PublishAck>;
    /** The channel's current members (the `presence` request). */
    presence(): Promise<Member[]>;
    /**
     * Stops the subscription. Listeners stay attached but get nothing more.
     * Resolves once the server confirmed (at once when not connected).
     */
    unsubscribe(): Promise<void>;
    private end;
    private clearRetry;
    private onSubscribed;
    private onSubscribeError;
}
