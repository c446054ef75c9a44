export { EddyError } from "./errors.js";
export interface EddyServerOptions {
    /** Base URL of the server, e.g. "https://eddy.example.com" (no trailing /api). */
    apiUrl?: string;
    /** API key for the HTTP API (sent as `Authorization: Bearer <apiKey>`). */
    apiKey?: string;
    /** The server's `secret`, to sign client tokens (HS256). */
    secret?: string;
    /** fetch implementation. Default: globalThis.fetch (Node 18+). */
    fetch?: typeof fetch;
    /** HTTP timeout in ms. Default 10000. */
    timeout?: number;
}
export interface TokenOptions {
    /** The user id (required). */
    sub: string;
    /** Glob patterns the connection may subscribe to. Absent: the server's default_channels. */
    channels?: string[];
    /** Glob patterns the connection may publish to. Absent: none. */
    publish?: string[];
    /** Any JSON; shown to other members in presence. */
    info?: unknown;
    /** Lifetime in seconds. Default 3600. */
    ttl?: number;
    /** Extra claims, merged in last. */
    claims?: Record<string, unknown>;
}
/** One message of a batch. */
export interface BatchMessage {
    channel: string;
    event: string;
    data?: unknown;
}
/** The fate of one batch message: published, or refused with the server's error. */
export type BatchResult = {
    id: string;
    offset?: number;
    error?: undefined;
} | {
    id?: undefined;
    offset?: undefined;
    error: {
        code: string;
        message: string;
    };
};
/** Server-side helper. Keep the api key and secret out of browsers. */
export declare class EddyServer {
    private readonly opts;
    constructor(options: EddyServerOptions);
    /** Publishes a message over the HTTP API; resolves with the message id. */
    publish(channel: string, event: string, data?: unknown): Promise<{
        id: string;
    }>;
    /**
     * Publishes many messages in one request (POST /api/v1/batch). Each goes
     * through the server's functions like a single publish, in order; resolves
     * with one result per message, in order: `{ id, offset }` when published
     * (`offset` absent when a function dropped it or sent it elsewhere), or
     * `{ error: { code, message } }` when that message alone was refused.
     * Rejects only when the request as a whole fails (auth, more than the
     * server's `max_batch`, network).
     */
    batch(messages: BatchMessage[]): Promise<BatchResult[]>;
    private post;
    /** Signs a client token (HS256 JWT) with the server's secret. */
    createToken(options: TokenOptions): string;
}
