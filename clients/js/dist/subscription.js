import { backoffDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { EddyError } from "./errors.js";
const RESERVED_EVENTS = /* @__PURE__ */ new Set([
  "subscribed",
  "unsubscribed",
  "presence",
  "error",
  "*"
]);
const TRANSIENT = /* @__PURE__ */ new Set(["timeout", "unavailable", "internal"]);
class Subscription {
  /** @internal Use `eddy.subscribe(channel)`. */
  constructor(host, channel) {
    this._state = "subscribing";
    this.events = new Emitter();
    this.everSubscribed = false;
    this.inFlight = false;
    this.generation = 0;
    this.retryAttempt = 0;
    this.host = host;
    this.channel = channel;
  }
  get state() {
    return this._state;
  }
  /** The position of the last message received (or of the subscribe reply). */
  get position() {
    return this.pos ? { ...this.pos } : void 0;
  }
  on(event, fn) {
    return this.events.on(event, fn);
  }
  once(event, fn) {
    return this.events.once(event, fn);
  }
  off(event, fn) {
    this.events.off(event, fn);
  }
  /**
   * Publishes to this channel (the token's `publish` claim must allow it).
   * Resolves with the server's ack; rejects with an EddyError whose `code`
   * is e.g. `forbidden`, `rejected`, `rate_limited`, `timeout`.
   * Subscribing is not needed to publish.
   */
  publish(event, data) {
    return this.host.call({ type: "publish", channel: this.channel, event, data: data === void 0 ? null : data }).then((f) => ({ id: String(f.msg ?? "") }));
  }
  /** The channel's current members (the `presence` request). */
  presence() {
    return this.host.call({ type: "presence", channel: this.channel }).then((f) => Array.isArray(f.members) ? f.members : []);
  }
  /**
   * Stops the subscription. Listeners stay attached but get nothing more.
   * Resolves once the server confirmed (at once when not connected).
   */
  unsubscribe() {
    if (this._state === "unsubscribed") return Promise.resolve();
    this.end();
    if (!this.host.isConnected) return Promise.resolve();
    return this.host.call({ type: "unsubscribe", channel: this.channel }).then(
      () => void 0,
      (err) => {
        if (["not_found", "disconnected", "closed"].includes(err.code)) return;
        throw err;
      }
    );
  }
  end() {
    this._state = "unsubscribed";
    this.generation++;
    this.inFlight = false;
    this.clearRetry();
    this.host.removeSubscription(this);
    this.events.emit("unsubscribed");
  }
  clearRetry() {
    if (this.retryTimer !== void 0) clearTimeout(this.retryTimer);
    this.retryTimer = void 0;
  }
  /** @internal Sends the subscribe request (with `since` when a position is known). */
  _send() {
    if (this._state === "unsubscribed" || this.inFlight) return;
    this.clearRetry();
    this._state = "subscribing";
    const gen = ++this.generation;
    const since = this.pos && this.pos.epoch ? { ...this.pos } : void 0;
    const frame = { type: "subscribe", channel: this.channel };
    if (since) frame.since = since;
    this.inFlight = true;
    this.host.requestNow(frame, {
      onReply: (reply) => {
        if (gen !== this.generation) return;
        this.inFlight = false;
        this.onSubscribed(reply, since !== void 0);
      },
      onError: (err) => {
        if (gen !== this.generation) return;
        this.inFlight = false;
        this.onSubscribeError(err);
      }
    });
  }
  /** @internal The connection dropped: the next `ready` resubscribes. */
  _disconnected() {
    if (this._state === "unsubscribed") return;
    this.generation++;
    this.inFlight = false;
    this.clearRetry();
    this._state = "subscribing";
  }
  onSubscribed(reply, sentSince) {
    const recovered = sentSince && reply.recovered === true;
    const epoch = typeof reply.epoch === "string" ? reply.epoch : void 0;
    const offset = typeof reply.offset === "number" ? reply.offset : void 0;
    if (!recovered && epoch !== void 0 && offset !== void 0) {
      this.pos = { epoch, offset };
    }
    this._state = "subscribed";
    this.retryAttempt = 0;
    const ev = {
      channel: this.channel,
      epoch: epoch ?? "",
      offset: offset ?? 0,
      resubscribed: this.everSubscribed,
      recovered
    };
    if (Array.isArray(reply.members)) ev.members = reply.members;
    this.everSubscribed = true;
    this.events.emit("subscribed", ev);
  }
  onSubscribeError(err) {
    if (err.code === "disconnected" || err.code === "closed") return;
    this.events.emit("error", err);
    if (TRANSIENT.has(err.code) && this._state !== "unsubscribed") {
      const delay = this.host.retryDelay(this.retryAttempt++);
      const timedOut = err.code === "timeout";
      this.retryTimer = setTimeout(() => {
        this.retryTimer = void 0;
        if (!this.host.isConnected) return;
        if (timedOut) this.host.requestNow({ type: "unsubscribe", channel: this.channel }, { onReply() {
        }, onError() {
        } });
        this._send();
      }, delay);
      return;
    }
    if (this._state !== "unsubscribed") this.end();
  }
  /** @internal */
  _onMessage(f) {
    if (this._state === "unsubscribed") return false;
    if (typeof f.offset === "number" && typeof f.epoch === "string") {
      if (this.pos && this.pos.epoch === f.epoch && f.offset <= this.pos.offset) return false;
      this.pos = { epoch: f.epoch, offset: f.offset };
    }
    const msg = f;
    if (!RESERVED_EVENTS.has(msg.event)) this.events.emit(msg.event, msg.data, msg);
    this.events.emit("*", msg.event, msg.data, msg);
    return true;
  }
  /**
   * @internal An unsolicited `subscribed` (no id): the server resynchronised
   * the subscription over the open connection after its broker came back
   * and the history no longer covered what was missed (`recovered:false`).
   * The position moves to the one given, and "subscribed" is emitted as
   * after a resubscribe that could not recover.
   */
  _onResynced(f) {
    if (this._state !== "subscribed") return;
    const epoch = typeof f.epoch === "string" ? f.epoch : void 0;
    const offset = typeof f.offset === "number" ? f.offset : void 0;
    if (epoch === void 0 || offset === void 0) return;
    this.pos = { epoch, offset };
    const ev = {
      channel: this.channel,
      epoch,
      offset,
      resubscribed: true,
      recovered: f.recovered === true
    };
    this.events.emit("subscribed", ev);
  }
  /** @internal */
  _onPresence(f) {
    if (this._state === "unsubscribed") return;
    this.events.emit("presence", {
      channel: this.channel,
      action: f.action,
      member: f.member
    });
  }
}
export {
  RESERVED_EVENTS,
  Subscription
};
