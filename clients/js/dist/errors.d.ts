/**
 * Error codes sent by the server (see docs/protocol.md) plus the client's own:
 * `timeout` (no reply in time), `disconnected` (the connection dropped while
 * the request was in flight), `closed` (eddy.close() was called),
 * `http` (the HTTP API answered without a JSON error body).
 */
export type ErrorCode = "bad_request" | "unauthorized" | "forbidden" | "not_found" | "too_large" | "rate_limited" | "rejected" | "unavailable" | "internal" | "timeout" | "disconnected" | "closed" | "http" | (string & {});
/** An Error carrying the protocol's stable error `code`. */
export declare class EddyError extends Error {
    readonly code: ErrorCode;
    /** HTTP status, for errors from the HTTP API. */
    readonly status?: number;
    constructor(code: ErrorCode, message?: string, status?: number);
}
