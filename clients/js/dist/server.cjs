"use strict";
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// src/server.ts
var server_exports = {};
__export(server_exports, {
  EddyError: () => EddyError,
  EddyServer: () => EddyServer
});
module.exports = __toCommonJS(server_exports);
var import_node_crypto = require("node:crypto");

// src/errors.ts
var EddyError = class extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "EddyError";
    this.code = code;
    if (status !== void 0) this.status = status;
  }
};

// src/server.ts
function b64url(input) {
  return Buffer.from(input).toString("base64url");
}
var EddyServer = class {
  constructor(options) {
    this.opts = options;
  }
  /** Publishes a message over the HTTP API; resolves with the message id. */
  async publish(channel, event, data) {
    const body = await this.post("/api/v1/publish", { channel, event, data: data === void 0 ? null : data });
    return { id: String(body?.id ?? "") };
  }
  /**
   * Publishes many messages in one request (POST /api/v1/batch). Each goes
   * through the server's functions like a single publish, in order; resolves
   * with one result per message, in order: `{ id, offset }` when published
   * (`offset` absent when a function dropped it or sent it elsewhere), or
   * `{ error: { code, message } }` when that message alone was refused.
   * Rejects only when the request as a whole fails (auth, more than the
   * server's `max_batch`, network).
   */
  async batch(messages) {
    if (!Array.isArray(messages)) throw new Error("eddy: batch takes an array of { channel, event, data }");
    const items = messages.map((m) => ({ channel: m.channel, event: m.event, data: m.data === void 0 ? null : m.data }));
    const body = await this.post("/api/v1/batch", { messages: items });
    const results = body?.results;
    if (!Array.isArray(results) || results.length !== messages.length) {
      throw new EddyError("http", `eddy: POST /api/v1/batch: ${Array.isArray(results) ? results.length : "no"} results for ${messages.length} messages`);
    }
    return results;
  }
  async post(path, payload) {
    const { apiUrl, apiKey } = this.opts;
    if (!apiUrl) throw new Error("eddy: apiUrl is required to publish");
    if (!apiKey) throw new Error("eddy: apiKey is required to publish");
    const doFetch = this.opts.fetch ?? globalThis.fetch;
    const url = apiUrl.replace(/\/+$/, "") + path;
    let res;
    try {
      res = await doFetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(this.opts.timeout ?? 1e4)
      });
    } catch (err) {
      const e = err;
      const code = e.name === "TimeoutError" ? "timeout" : "unavailable";
      throw new EddyError(code, `eddy: POST ${url}: ${e.message}`);
    }
    const text = await res.text();
    let body;
    try {
      body = text ? JSON.parse(text) : void 0;
    } catch {
      body = void 0;
    }
    if (!res.ok) {
      const err = body?.error;
      if (err && typeof err.code === "string") throw new EddyError(err.code, err.message, res.status);
      throw new EddyError("http", `eddy: POST ${url}: HTTP ${res.status} ${text.slice(0, 200)}`, res.status);
    }
    return body;
  }
  /** Signs a client token (HS256 JWT) with the server's secret. */
  createToken(options) {
    const { secret } = this.opts;
    if (!secret) throw new Error("eddy: secret is required to create tokens");
    if (!options || typeof options.sub !== "string" || !options.sub) throw new Error("eddy: token `sub` is required");
    const now = Math.floor(Date.now() / 1e3);
    const claims = { sub: options.sub, iat: now, exp: now + (options.ttl ?? 3600) };
    if (options.channels !== void 0) claims.channels = options.channels;
    if (options.publish !== void 0) claims.publish = options.publish;
    if (options.info !== void 0) claims.info = options.info;
    Object.assign(claims, options.claims);
    const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const body = b64url(JSON.stringify(claims));
    const sig = (0, import_node_crypto.createHmac)("sha256", secret).update(`${head}.${body}`).digest("base64url");
    return `${head}.${body}.${sig}`;
  }
};
