/** A member of a presence channel. */
export interface Member {
    user: string;
    conn: string;
    info?: unknown;
}
/** A message delivered on a channel (the server's `message` frame). */
export interface Message<T = unknown> {
    channel: string;
    event: string;
    data: T;
    /** The server's message id. */
    id: string;
    /** Publish time in unix milliseconds. */
    ts: number;
    /** Position in the channel's stream, strictly increasing by 1. */
    offset: number;
    epoch: string;
    /** The publisher's `sub`; absent for messages from the HTTP API. */
    user?: string;
}
/** A join or leave in a presence channel. */
export interface PresenceEvent {
    channel: string;
    action: "join" | "leave" | (string & {});
    member: Member;
}
/** Payload of a subscription's `subscribed` event. */
export interface SubscribedEvent {
    channel: string;
    epoch: string;
    offset: number;
    /** True when this subscribe followed an earlier one (a reconnect). */
    resubscribed: boolean;
    /**
     * True when the server confirmed that every message missed since the last
     * one received was (or is about to be) delivered. False on a first
     * subscribe and whenever the gap could not be filled: reload app state then.
     */
    recovered: boolean;
    /** Members, in presence channels. */
    members?: Member[];
}
/** Resolved value of `publish`. */
export interface PublishAck {
    /** The message id assigned by the server. */
    id: string;
}
export interface ReadyEvent {
    conn: string;
    user: string;
}
export interface DisconnectedEvent {
    code: number;
    reason: string;
    /** Whether the client will try to reconnect. */
    willReconnect: boolean;
}
export interface ReconnectingEvent {
    /** Milliseconds until the next attempt. */
    delay: number;
    /** Zero-based attempt number since the last connection that stayed up for `stableAfter`. */
    attempt: number;
}
/** A stream position: what `since` carries. */
export interface StreamPosition {
    epoch: string;
    offset: number;
}
/** The parts of the WebSocket interface the client uses (browser or `ws`). */
export interface WebSocketLike {
    readonly readyState: number;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: any) => void) | null;
    onmessage: ((ev: {
        data: any;
    }) => void) | null;
    onclose: ((ev: {
        code: number;
        reason: string;
    }) => void) | null;
    onerror: ((ev: any) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;
/** Any server frame, loosely typed. */
export interface Frame {
    type: string;
    id?: number;
    [key: string]: any;
}
