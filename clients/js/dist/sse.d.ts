import type { WebSocketLike } from "./types.js";
/**
 * The SSE transport, for networks that block WebSockets: server frames come
 * on an event stream (GET /sse), client frames go in POSTs to
 * /sse/{session}. It is read over fetch's body stream rather than with
 * EventSource, which Node lacks before v22 and which hides the comment lines
 * the server pings with. It looks like a WebSocket to the client, so the
 * protocol above it is the same (docs/protocol.md, "SSE transport").
 */
/** The SSE endpoint for a WebSocket URL: ws(s) becomes http(s), a trailing /ws becomes /sse. */
export declare function sseUrlFor(wsUrl: string): string;
type FetchLike = typeof fetch;
export type SseSocketConstructor = new (url: string, fetchImpl?: FetchLike) => WebSocketLike;
export declare class SseSocket implements WebSocketLike {
    readonly url: string;
    readyState: number;
    onopen: ((ev: any) => void) | null;
    onmessage: ((ev: {
        data: any;
    }) => void) | null;
    onclose: ((ev: {
        code: number;
        reason: string;
    }) => void) | null;
    onerror: ((ev: any) => void) | null;
    /** The session id the server gave this stream (its POSTs' address). */
    session: string;
    private readonly ctrl;
    private readonly fetchImpl;
    private queue;
    private posting;
    /** url is the SSE endpoint (see sseUrlFor). */
    constructor(url: string, fetchImpl?: FetchLike);
    send(data: string): void;
    close(code?: number, reason?: string): void;
    /** Cuts the stream without a close, as a network failure would (tests). */
    terminate(): void;
    private end;
    private run;
    private dispatch;
    private flush;
    private post;
}
export {};
