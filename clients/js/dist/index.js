import { Eddy } from "./client.js";
import { SseSocket, sseUrlFor } from "./sse.js";
import { Subscription, RESERVED_EVENTS } from "./subscription.js";
import { EddyError } from "./errors.js";
import { backoffDelay } from "./backoff.js";
import { splitFrames } from "./frames.js";
import { decodeJwtExp } from "./jwt.js";
import { Eddy as Eddy2 } from "./client.js";
export {
  Eddy,
  EddyError,
  RESERVED_EVENTS,
  SseSocket,
  Subscription,
  backoffDelay,
  decodeJwtExp,
  Eddy2 as default,
  splitFrames,
  sseUrlFor
};
