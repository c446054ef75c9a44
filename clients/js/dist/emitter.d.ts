export type Listener = (...args: any[]) => void;
/**
 * A minimal string-keyed event emitter. A listener that throws does not stop
 * the others or the client: its error is rethrown asynchronously, so it still
 * surfaces as an uncaught error.
 */
export declare class Emitter {
    private listeners;
    /** Adds a listener and returns a function that removes it. */
    on(event: string, fn: Listener): () => void;
    /** Adds a listener that is removed after its first call. */
    once(event: string, fn: Listener): () => void;
    /** Removes one listener, or every listener of `event` when `fn` is omitted. */
    off(event: string, fn?: Listener): void;
    emit(event: string, ...args: unknown[]): void;
}
