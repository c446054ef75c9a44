class Emitter {
  constructor() {
    this.listeners = /* @__PURE__ */ new Map();
  }
  /** Adds a listener and returns a function that removes it. */
  on(event, fn) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, set = /* @__PURE__ */ new Set());
    set.add(fn);
    return () => this.off(event, fn);
  }
  /** Adds a listener that is removed after its first call. */
  once(event, fn) {
    const wrapped = (...args) => {
      off();
      fn(...args);
    };
    const off = this.on(event, wrapped);
    return off;
  }
  /** Removes one listener, or every listener of `event` when `fn` is omitted. */
  off(event, fn) {
    const set = this.listeners.get(event);
    if (!set) return;
    if (fn) set.delete(fn);
    if (!fn || set.size === 0) this.listeners.delete(event);
  }
  emit(event, ...args) {
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
export {
  Emitter
};
