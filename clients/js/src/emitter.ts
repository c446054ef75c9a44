export type Listener = (...args: any[]) => void;

/**
 * A minimal string-keyed event emitter. A listener that throws does not stop
 * the others or the client: its error is rethrown asynchronously, so it still
 * surfaces as an uncaught error.
 */
export class Emitter {
  private listeners = new Map<string, Set<Listener>>();

  /** Adds a listener and returns a function that removes it. */
  on(event: string, fn: Listener): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Adds a listener that is removed after its first call. */
  once(event: string, fn: Listener): () => void {
    const wrapped: Listener = (...args) => {
      off();
      fn(...args);
    };
    const off = this.on(event, wrapped);
    return off;
  }

  /** Removes one listener, or every listener of `event` when `fn` is omitted. */
  off(event: string, fn?: Listener): void {
    const set = this.listeners.get(event);
    if (!set) return;
    if (fn) set.delete(fn);
    if (!fn || set.size === 0) this.listeners.delete(event);
  }

  emit(event: string, ...args: unknown[]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}
