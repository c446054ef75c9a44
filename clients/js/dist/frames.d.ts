/**
 * Splits one WebSocket text message into its frames: the server may batch
 * several JSON objects separated by "\n". Empty lines are skipped.
 */
export declare function splitFrames(text: string): string[];
