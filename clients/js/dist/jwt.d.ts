/**
 * Returns the `exp` claim (unix seconds) of a JWT without verifying it, or
 * undefined when the token is malformed or has no numeric `exp`.
 */
export declare function decodeJwtExp(token: string): number | undefined;
