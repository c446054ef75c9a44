// The Eddy chat demo: plain JavaScript on the global `Eddy` from /eddy.js.
//
// Flow: POST /demo/token {name} gives a token (development only); the page
// subscribes to chat:<room>, shows members from presence, loads the kept
// messages from GET /demo/history whenever the client could not recover
// (first join, or after the server lost the stream), and publishes with
// room.publish("msg", {text}).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // Counters the end-to-end tests read; handy in the console too.
  const stats = { historyLoads: 0, recoveries: 0, connects: 0 };
  window.chatDemo = { stats };

  let eddy = null;
  let room = null;
  let me = "";
  let everConnected = false;
  const messages = new Map(); // id -> message
  const members = new Map(); // conn -> member

  // ---- status and errors ----

  function setStatus(state, text) {
    $("status").dataset.state = state;
    $("status-text").textContent = text || state;
  }

  function showError(text) {
    $("banner-text").textContent = text;
    $("banner").hidden = false;
  }

  function hideError() {
    $("banner").hidden = true;
  }

  $("banner-close").onclick = hideError;

  // ---- tokens ----

  function tokenFetcher(name) {
    return async function getToken() {
      const res = await fetch("/demo/token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        const err = new Error((body.error && body.error.message) || "token endpoint answered " + res.status);
        err.code = (body.error && body.error.code) || "http";
        throw err;
      }
      return body.token;
    };
  }

  // ---- rendering ----

  const COLORS = ["#3b5bdb", "#2f9e44", "#e8590c", "#9c36b5", "#0c8599", "#c2255c", "#5c940d"];
  function colorOf(name) {
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return COLORS[h % COLORS.length];
  }

  function timeOf(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function renderMessages() {
    const list = $("messages");
    const sorted = [...messages.values()].sort((a, b) =>
      a.epoch === b.epoch ? a.offset - b.offset : a.ts - b.ts,
    );
    list.replaceChildren();
    if (sorted.length === 0) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No messages yet. Say hello!";
      list.append(li);
      return;
    }
    for (const m of sorted) list.append(m.system ? systemItem(m.text) : messageItem(m));
    list.scrollTop = list.scrollHeight;
  }

  function messageItem(m) {
    const who = m.user || "server";
    const li = document.createElement("li");
    li.className = "msg";
    li.dataset.user = who;
    const avatar = document.createElement("span");
    avatar.className = "avatar";
    avatar.style.background = colorOf(who);
    avatar.textContent = [...who][0].toUpperCase();
    const meta = document.createElement("div");
    meta.className = "meta";
    const b = document.createElement("b");
    b.textContent = who;
    meta.append(b, timeOf(m.ts));
    const text = document.createElement("div");
    text.className = "text";
    const d = m.data;
    text.textContent = typeof d === "string" ? d : d && typeof d.text === "string" ? d.text : JSON.stringify(d);
    li.append(avatar, meta, text);
    return li;
  }

  function systemItem(text) {
    const li = document.createElement("li");
    li.className = "system";
    li.textContent = text;
    return li;
  }

  let systemSeq = 0;
  function note(text) {
    const id = "sys-" + ++systemSeq;
    messages.set(id, { id, system: true, text, ts: Date.now(), epoch: "", offset: 0 });
    renderMessages();
  }

  function addMessage(msg) {
    if (msg.event !== "msg") return;
    messages.set(msg.id, msg);
    renderMessages();
  }

  function renderMembers() {
    const users = new Map(); // user -> number of connections
    for (const m of members.values()) users.set(m.user, (users.get(m.user) || 0) + 1);
    const list = $("members");
    list.replaceChildren();
    for (const user of [...users.keys()].sort()) {
      const li = document.createElement("li");
      li.textContent = user;
      if (user === me) li.className = "me";
      list.append(li);
    }
    $("member-count").textContent = String(users.size);
  }

  // ---- history ----

  async function loadHistory(roomName) {
    stats.historyLoads++;
    try {
      const res = await fetch("/demo/history?room=" + encodeURIComponent(roomName));
      const body = await res.json();
      if (!res.ok) throw new Error((body.error && body.error.message) || "history answered " + res.status);
      for (const m of body.messages || []) if (m.event === "msg") messages.set(m.id, m);
      renderMessages();
    } catch (err) {
      showError("Could not load earlier messages: " + err.message);
    }
  }

  // ---- joining and leaving ----

  function join(name, roomName) {
    me = name;
    everConnected = false;
    messages.clear();
    members.clear();
    hideError();
    $("room-name").textContent = roomName;
    $("join").hidden = true;
    $("chat").hidden = false;
    renderMessages();
    renderMembers();
    history.replaceState(null, "", "?room=" + encodeURIComponent(roomName));

    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const client = new Eddy(scheme + location.host + "/ws", {
      getToken: tokenFetcher(name),
      backoffBase: 300,
      backoffCap: 5000,
    });
    eddy = client;
    // Events of a client the user already left are ignored.
    const on = (event, fn) => client.on(event, (ev) => client === eddy && fn(ev));
    on("connecting", () => setStatus(everConnected ? "reconnecting" : "connecting", everConnected ? "reconnecting…" : "connecting…"));
    on("connected", () => {
      everConnected = true;
      stats.connects++;
      hideError();
      setStatus("connected", "connected as " + name);
    });
    on("reconnecting", ({ delay }) => setStatus("reconnecting", "reconnecting in " + (delay / 1000).toFixed(1) + " s…"));
    on("disconnected", ({ willReconnect, code }) => {
      if (!willReconnect) setStatus("disconnected", "disconnected (" + code + ")");
    });
    on("error", (err) => {
      // A rejected token would be rejected again: stop and say so. Other
      // errors (server unreachable, a dropped connection) are retried.
      if (err.code === "unauthorized" || err.code === "bad_request") {
        leave();
        showError("The server rejected the token: " + err.message);
        setStatus("rejected", "token rejected");
      }
    });

    room = client.subscribe("chat:" + roomName);
    room.on("subscribed", (ev) => {
      members.clear();
      for (const m of ev.members || []) members.set(m.conn, m);
      renderMembers();
      if (ev.recovered) {
        stats.recoveries++;
        note("Reconnected; missed messages recovered.");
      } else {
        if (ev.resubscribed) note("Reconnected; the server lost the stream, reloading kept messages.");
        loadHistory(roomName);
      }
    });
    room.on("presence", ({ action, member }) => {
      if (action === "join") members.set(member.conn, member);
      else if (action === "leave") members.delete(member.conn);
      renderMembers();
    });
    room.on("msg", (_data, msg) => addMessage(msg));
    room.on("error", (err) => showError("Cannot join #" + roomName + ": " + err.message));
  }

  function leave() {
    const e = eddy;
    eddy = null;
    room = null;
    if (e) e.close();
    setStatus("idle", "not connected");
    $("chat").hidden = true;
    $("join").hidden = false;
  }

  // ---- forms ----

  const params = new URLSearchParams(location.search);
  if (params.get("room")) $("room").value = params.get("room");
  try {
    $("name").value = localStorage.getItem("eddy-demo-name") || "";
  } catch (_) {
    /* storage disabled */
  }

  $("join").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("name").value.trim();
    const roomName = $("room").value.trim();
    if (!name || !roomName) return;
    try {
      localStorage.setItem("eddy-demo-name", name);
    } catch (_) {
      /* storage disabled */
    }
    join(name, roomName);
    $("text").focus();
  });

  $("send").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text || !room) return;
    input.value = "";
    room.publish("msg", { text }).catch((err) => {
      input.value = text;
      showError("Not sent (" + err.code + "): " + err.message);
    });
  });

  $("leave").onclick = leave;
})();
