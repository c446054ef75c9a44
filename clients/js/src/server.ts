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
    const { apiUrl, apiKey } = this.opts;
    if (!apiUrl) throw new Error("eddy: apiUrl is required to publish");
    if (!apiKey) throw new Error("eddy: apiKey is required to publish");
    const doFetch = this.opts.fetch ?? globalThis.fetch;
    const url = apiUrl.replace(/\/+$/, "") + "/api/v1/publish";
    let res: Response;
    try {
      res = await doFetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ channel, event, data: data === undefined ? null : data }),
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
    return { id: String(body?.id ?? "") };
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
