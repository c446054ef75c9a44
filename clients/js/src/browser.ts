// Entry of dist/eddy.min.js: defines the global `Eddy` (the client class),
// with the error class and helpers attached to it.
import { Eddy } from "./client.js";
import { EddyError } from "./errors.js";
import { backoffDelay } from "./backoff.js";
import { decodeJwtExp } from "./jwt.js";

Object.assign(Eddy, { EddyError, backoffDelay, decodeJwtExp });
(globalThis as unknown as { Eddy: typeof Eddy }).Eddy = Eddy;
