// Backend helper for Node: publish over the HTTP API and mint client tokens.
import { createHmac } from "node:crypto";
import { EddyError } from "./errors.js";

export { EddyError } from "./errors.js";

export interface EddyServerOptions {
  /** Base URL of the server, e.g. "https://eddy.example.com" (no trailing /api). */
  apiUrl?: string;
  /** API key for the HTTP API (sent as `Authorization: Bearer <apiKey>`). */
  apiKey?: string;
  /** The server's `secret`, to sign client tokens (HS256). */
  secret?: string;
  /** fetch implementation. Default: globalThis.fetch (Node 18+). */
  fetch?: typeof fetch;
  /** HTTP timeout in ms. Default 10000. */
  timeout?: number;
}

export interface TokenOptions {
  /** The user id (required). */
  sub: string;
  /** Glob patterns the connection may subscribe to. Absent: the server's default_channels. */
  channels?: string[];
  /** Glob patterns the connection may publish to. Absent: none. */
  publish?: string[];
  /** Any JSON; shown to other members in presence. */
  info?: unknown;
  /** Lifetime in seconds. Default 3600. */
  ttl?: number;
  /** Extra claims, merged in last. */
  claims?: Record<string, unknown>;
}

/** One message of a batch. */
export interface BatchMessage {
  channel: string;
  event: string;
  data?: unknown;
}

/** The fate of one batch message: published, or refused with the server's error. */
export type BatchResult = { id: string; offset?: number; error?: undefined } | { id?: undefined; offset?: undefined; error: { code: string; message: string } };

function b64url(input: string | Buffer): string {
  return Buffer.from(input).toString("base64url");
}

/** Server-side helper. Keep the api key and secret out of browsers. */
export class EddyServer {
  private readonly opts: EddyServerOptions;

  constructor(options: EddyServerOptions) {
    this.opts = options;
  }

  /** Publishes a message over the HTTP API; resolves with the message id. */
  async publish(channel: string, event: string, data?: unknown): Promise<{ id: string }> {
    const body = await this.post("/api/v1/publish", { channel, event, data: data === undefined ? null : data });
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
  async batch(messages: BatchMessage[]): Promise<BatchResult[]> {
    if (!Array.isArray(messages)) throw new Error("eddy: batch takes an array of { channel, event, data }");
    const items = messages.map((m) => ({ channel: m.channel, event: m.event, data: m.data === undefined ? null : m.data }));
    const body = await this.post("/api/v1/batch", { messages: items });
    const results = body?.results;
    if (!Array.isArray(results) || results.length !== messages.length) {
      throw new EddyError("http", `eddy: POST /api/v1/batch: ${Array.isArray(results) ? results.length : "no"} results for ${messages.length} messages`);
    }
    return results as BatchResult[];
  }

  private async post(path: string, payload: unknown): Promise<any> {
    const { apiUrl, apiKey } = this.opts;
    if (!apiUrl) throw new Error("eddy: apiUrl is required to publish");
    if (!apiKey) throw new Error("eddy: apiKey is required to publish");
    const doFetch = this.opts.fetch ?? globalThis.fetch;
    const url = apiUrl.replace(/\/+$/, "") + path;
    let res: Response;
    try {
      res = await doFetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(this.opts.timeout ?? 10_000),
      });
    } catch (err) {
      const e = err as Error;
      const code = e.name === "TimeoutError" ? "timeout" : "unavailable";
      throw new EddyError(code, `eddy: POST ${url}: ${e.message}`);
    }
    const text = await res.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const err = body?.error;
      if (err && typeof err.code === "string") throw new EddyError(err.code, err.message, res.status);
      throw new EddyError("http", `eddy: POST ${url}: HTTP ${res.status} ${text.slice(0, 200)}`, res.status);
    }
    return body;
  }

  /** Signs a client token (HS256 JWT) with the server's secret. */
  createToken(options: TokenOptions): string {
    const { secret } = this.opts;
    if (!secret) throw new Error("eddy: secret is required to create tokens");
    if (!options || typeof options.sub !== "string" || !options.sub) throw new Error("eddy: token `sub` is required");
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = { sub: options.sub, iat: now, exp: now + (options.ttl ?? 3600) };
    if (options.channels !== undefined) claims.channels = options.channels;
    if (options.publish !== undefined) claims.publish = options.publish;
    if (options.info !== undefined) claims.info = options.info;
    Object.assign(claims, options.claims);
    const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const body = b64url(JSON.stringify(claims));
    const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
    return `${head}.${body}.${sig}`;
  }
}
