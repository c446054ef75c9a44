function sseUrlFor(wsUrl) {
  const u = new URL(wsUrl);
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  u.pathname = u.pathname.replace(/\/ws\/?$/, "").replace(/\/$/, "") + "/sse";
  return u.toString();
}
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;
class SseSocket {
  /** url is the SSE endpoint (see sseUrlFor). */
  constructor(url, fetchImpl) {
    this.url = url;
    this.readyState = CONNECTING;
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    /** The session id the server gave this stream (its POSTs' address). */
    this.session = "";
    this.ctrl = new AbortController();
    this.queue = [];
    this.posting = false;
    const f = fetchImpl ?? globalThis.fetch;
    if (!f) throw new Error("eddy: no fetch implementation for the SSE transport");
    this.fetchImpl = f;
    void this.run();
  }
  send(data) {
    if (this.readyState !== OPEN) throw new Error("eddy: SSE transport not open");
    this.queue.push(data);
    void this.flush();
  }
  close(code = 1e3, reason = "") {
    this.end(code, reason, false);
  }
  /** Cuts the stream without a close, as a network failure would (tests). */
  terminate() {
    this.end(1006, "sse stream terminated", true);
  }
  end(code, reason, error) {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.ctrl.abort();
    if (error) this.onerror?.({ message: reason });
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }
  async run() {
    let res;
    try {
      res = await this.fetchImpl(this.url, {
        headers: { accept: "text/event-stream" },
        cache: "no-store",
        signal: this.ctrl.signal
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
    let data = [];
    try {
      for (; ; ) {
        const { value, done } = await reader.read();
        if (done || this.readyState === CLOSED) break;
        buf += decoder.decode(value, { stream: true });
        const lines = buf.split("\n");
        buf = lines.pop();
        for (let line of lines) {
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            if (data.length) this.dispatch(data.join("\n"));
            data = [];
            if (this.readyState === CLOSED) return;
          } else if (line.startsWith(":")) {
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
  dispatch(text) {
    if (this.readyState === CONNECTING) {
      let f;
      try {
        f = JSON.parse(text);
      } catch {
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
      }
    }
    this.onmessage?.({ data: text });
  }
  async flush() {
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
  async post(body) {
    try {
      const res = await this.fetchImpl(`${this.url}/${encodeURIComponent(this.session)}`, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=utf-8" },
        body,
        signal: this.ctrl.signal
      });
      await res.arrayBuffer().catch(() => void 0);
      if (!res.ok && res.status !== 404 && res.status !== 410 && this.readyState === OPEN) {
        this.end(1006, `sse: POST answered ${res.status}`, true);
      }
    } catch (err) {
      if (this.readyState === OPEN) this.end(1006, `sse: POST failed: ${err instanceof Error ? err.message : String(err)}`, true);
    }
  }
}
export {
  SseSocket,
  sseUrlFor
};
