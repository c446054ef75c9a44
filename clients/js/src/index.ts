export { Eddy, type EddyOptions, type ConnectionState, type Transport } from "./client.js";
export { SseSocket, sseUrlFor, type SseSocketConstructor } from "./sse.js";
export { Subscription, RESERVED_EVENTS, type SubscriptionState } from "./subscription.js";
export { EddyError, type ErrorCode } from "./errors.js";
export { backoffDelay } from "./backoff.js";
export { splitFrames } from "./frames.js";
export { decodeJwtExp } from "./jwt.js";
export type {
  DisconnectedEvent,
  Member,
  Message,
  PresenceEvent,
  PublishAck,
  ReadyEvent,
  ReconnectingEvent,
  StreamPosition,
  SubscribedEvent,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
export { Eddy as default } from "./client.js";
