/**
 * The reconnect delay for a zero-based `attempt`, with full jitter:
 * a uniformly random number of milliseconds in [0, min(cap, base * 2^attempt)).
 */
export declare function backoffDelay(attempt: number, base?: number, cap?: number, random?: () => number): number;
