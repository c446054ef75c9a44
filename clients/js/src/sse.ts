import type { WebSocketLike } from "./types.js";

/**
 * The SSE transport, for networks that block WebSockets: server frames come
 * on an event stream (GET /sse), client frames go in POSTs to
 * /sse/{session}. It is read over fetch's body stream rather than with
 * EventSource, which Node lacks before v22 and which hides the comment lines
 * the server pings with. It looks like a WebSocket to the client, so the
 * protocol above it is the same (docs/protocol.md, "SSE transport").
 */

/** The SSE endpoint for a WebSocket URL: ws(s) becomes http(s), a trailing /ws becomes /sse. */
export function sseUrlFor(wsUrl: string): string {
  const u = new URL(wsUrl);
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  u.pathname = u.pathname.replace(/\/ws\/?$/, "").replace(/\/$/, "") + "/sse";
  return u.toString();
}

type FetchLike = typeof fetch;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

export type SseSocketConstructor = new (url: string, fetchImpl?: FetchLike) => WebSocketLike;

export class SseSocket implements WebSocketLike {
  readyState = CONNECTING;
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: { data: any }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;
  /** The session id the server gave this stream (its POSTs' address). */
  session = "";
  private readonly ctrl = new AbortController();
  private readonly fetchImpl: FetchLike;
  private queue: string[] = [];
  private posting = false;

  /** url is the SSE endpoint (see sseUrlFor). */
  constructor(
    readonly url: string,
    fetchImpl?: FetchLike,
  ) {
    const f = fetchImpl ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new Error("eddy: no fetch implementation for the SSE transport");
    this.fetchImpl = f;
    void this.run();
  }

  send(data: string): void {
    if (this.readyState !== OPEN) throw new Error("eddy: SSE transport not open");
    this.queue.push(data);
    void this.flush();
  }

  close(code = 1000, reason = ""): void {
    this.end(code, reason, false);
  }

  /** Cuts the stream without a close, as a network failure would (tests). */
  terminate(): void {
    this.end(1006, "sse stream terminated", true);
  }

  private end(code: number, reason: string, error: boolean): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.ctrl.abort();
    if (error) this.onerror?.({ message: reason });
    // As a WebSocket's, the close event comes after close() returned.
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }

  private async run(): Promise<void> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.url, {
        headers: { accept: "text/event-stream" },
        cache: "no-store",
        signal: this.ctrl.signal,
      });
    } catch (err) {
      this.end(1006, `sse: ${err instanceof Error ? err.message : String(err)}`, true);
      return;
    }
    if (!res.ok || !res.body) {
      this.end(1006, `sse: GET ${this.url} answered ${res.status}`, true);
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let data: string[] = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.readyState === CLOSED) break;
        buf += decoder.decode(value, { stream: true });
        const lines = buf.split("\n");
        buf = lines.pop()!;
        for (let line of lines) {
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            if (data.length) this.dispatch(data.join("\n"));
            data = [];
            if (this.readyState === CLOSED) return;
          } else if (line.startsWith(":")) {
            // The server's ping: an empty POST answers it, so the server
            // knows this client is still there.
            if (this.readyState === OPEN) void this.post("");
          } else if (line.startsWith("data:")) {
            data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
          }
        }
      }
    } catch (err) {
      this.end(1006, `sse: ${err instanceof Error ? err.message : String(err)}`, true);
      return;
    }
    this.end(1006, "sse stream ended", true);
  }

  private dispatch(text: string): void {
    if (this.readyState === CONNECTING) {
      let f: { type?: string; session?: string } | undefined;
      try {
        f = JSON.parse(text);
      } catch {
        /* handled below */
      }
      if (f?.type !== "session" || !f.session) {
        this.end(1006, "sse: the stream did not start with a session", true);
        return;
      }
      this.session = f.session;
      this.readyState = OPEN;
      this.onopen?.({});
      return;
    }
    if (text.startsWith('{"type":"close"')) {
      try {
        const f = JSON.parse(text);
        this.end(Number(f.code) || 1006, String(f.reason ?? ""), false);
        return;
      } catch {
        /* not a close: a frame */
      }
    }
    this.onmessage?.({ data: text });
  }

  private async flush(): Promise<void> {
    if (this.posting || !this.queue.length) return;
    const body = this.queue.join("\n") + "\n";
    this.queue = [];
    this.posting = true;
    try {
      await this.post(body);
    } finally {
      this.posting = false;
    }
    if (this.readyState === OPEN) void this.flush();
  }

  private async post(body: string): Promise<void> {
    try {
      // text/plain keeps a cross-origin POST free of a CORS preflight.
      const res = await this.fetchImpl(`${this.url}/${encodeURIComponent(this.session)}`, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=utf-8" },
        body,
        signal: this.ctrl.signal,
      });
      // The answer carries nothing: replies come on the stream.
      await res.arrayBuffer().catch(() => undefined);
      // 404 and 410: the session is over, and its stream is ending with
      // the close event that says why; wait for that.
      if (!res.ok && res.status !== 404 && res.status !== 410 && this.readyState === OPEN) {
        this.end(1006, `sse: POST answered ${res.status}`, true);
      }
    } catch (err) {
      if (this.readyState === OPEN) this.end(1006, `sse: POST failed: ${err instanceof Error ? err.message : String(err)}`, true);
    }
  }
}
