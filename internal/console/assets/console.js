// Eddy's web console. Every figure and action goes through the admin HTTP
// API (docs/http-api.md) with the admin key, which stays in sessionStorage:
// closing the tab forgets it. Live figures come from one stream,
// GET /api/v1/stats?follow=1, read with fetch (EventSource cannot send an
// Authorization header).
"use strict";

const KEY = "eddy.adminKey";
const $ = (sel) => document.querySelector(sel);
const state = { stats: null, points: [], stream: null, fnLog: null, fnName: "", channel: "", discUser: "" };

// ---- the admin API -------------------------------------------------------

class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const e = (data && data.error) || {};
    // The apps API takes the operator key only: an admin key refused there
    // is still good for the rest of the console.
    if (res.status === 401 && path !== "/api/v1/stats" && !path.startsWith("/api/v1/apps")) signOut("Your key was refused: sign in again.");
    throw new APIError(res.status, e.code || "http_" + res.status, e.message || res.statusText);
  }
  return data;
}

// follow reads a server-sent event stream of path, calling onEvent(name, data)
// per event, until the returned controller is aborted or the stream ends.
function follow(path, onEvent, onState) {
  const ctrl = new AbortController();
  (async () => {
    let res;
    try {
      res = await fetch(path, { headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) }, signal: ctrl.signal });
    } catch { onState && onState(false, null); return; }
    if (!res.ok) { onState && onState(false, res.status); return; }
    onState && onState(true, 200);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trimStart();
          }
          if (data) { try { onEvent(name, JSON.parse(data)); } catch { /* a bad event is skipped */ } }
        }
      }
    } catch { /* aborted or cut */ }
    onState && onState(false, 0);
  })();
  return ctrl;
}

// ---- helpers -------------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function fillTable(sel, rows, empty, cols) {
  const tb = $(sel + " tbody");
  tb.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colspan: String(cols) }, empty))]));
}
const fmt = (n) => (n >= 100 || Number.isInteger(n) ? Math.round(n).toLocaleString("en") : n.toFixed(1));
function uptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return uptime(s) + " ago";
}

// ---- sign-in -------------------------------------------------------------

function signOut(msg) {
  sessionStorage.removeItem(KEY);
  if (state.stream) state.stream.abort();
  if (state.fnLog) state.fnLog.abort();
  state.stream = state.fnLog = null;
  $("#app").hidden = true;
  $("#signin").hidden = false;
  const err = $("#signin-error");
  err.hidden = !msg;
  err.textContent = msg || "";
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    const stats = await api("GET", "/api/v1/stats");
    state.points = stats.history || [];
    render(stats);
  } catch (e) {
    sessionStorage.removeItem(KEY);
    const msg = e.code === "admin_disabled" ? e.message : e.status === 401 ? "Wrong key. The server said: " + e.message + "." : "Could not reach the server: " + e.message;
    signOut(msg);
    return false;
  }
  $("#signin").hidden = true;
  $("#app").hidden = false;
  startStream();
  route();
  return true;
}

function startStream() {
  if (state.stream) state.stream.abort();
  const live = $("#live");
  state.stream = follow("/api/v1/stats?follow=1", (name, data) => {
    if (name !== "stats") return;
    if (data.history) state.points = data.history;
    else {
      const self = data.nodes.find((n) => n.self) || data.nodes[0];
      state.points.push({ time_ms: data.time_ms, connections: self.connections, subscriptions: self.subscriptions, messages_in_per_s: self.messages_in_per_s, messages_out_per_s: self.messages_out_per_s });
      if (state.points.length > 300) state.points.shift();
    }
    render(data);
  }, (up, status) => {
    live.className = "live " + (up ? "on" : "off");
    $("#live-text").textContent = up ? "live" : "disconnected";
    // The stream ends when the node restarts or the network blips: come back.
    if (!up && status !== 401 && sessionStorage.getItem(KEY)) setTimeout(() => sessionStorage.getItem(KEY) && startStream(), 2000);
  });
}

// ---- overview ------------------------------------------------------------

function render(stats) {
  state.stats = stats;
  const nodes = stats.nodes || [];
  const sum = (k) => nodes.reduce((a, n) => a + (n[k] || 0), 0);
  $("#t-nodes").textContent = nodes.length;
  $("#t-conns").textContent = fmt(sum("connections"));
  $("#t-subs").textContent = fmt(sum("subscriptions"));
  $("#t-in").textContent = fmt(sum("messages_in_per_s"));
  $("#t-out").textContent = fmt(sum("messages_out_per_s"));
  const b = $("#ov-broker");
  b.textContent = `${stats.broker.kind} broker · ${stats.broker.ready ? "ready" : "unavailable"}`;
  b.className = "badge " + (stats.broker.ready ? "ok" : "bad");
  fillTable("#nodes-table", nodes.map((n) => el("tr", {},
    el("td", {}, n.name, n.self ? el("span", { class: "badge self" }, "this node") : ""),
    el("td", { class: "mono" }, n.id),
    el("td", { class: "num" }, uptime(n.uptime_s)),
    el("td", { class: "num" }, fmt(n.connections)),
    el("td", { class: "num" }, fmt(n.subscriptions)),
    el("td", { class: "num" }, fmt(n.messages_in_per_s || 0)),
    el("td", { class: "num" }, fmt(n.messages_out_per_s || 0)),
  )), "no nodes", 7);
  fillTable("#busiest-table", (stats.busiest || []).filter((c) => c.per_s > 0).map((c) => el("tr", { class: "clickable", onclick: () => { location.hash = "#channels"; openChannel(c.channel); } },
    el("td", { class: "mono" }, c.channel), el("td", { class: "num" }, fmt(c.subscribers)), el("td", { class: "num" }, fmt(c.per_s)),
  )), "no messages in the last second", 3);
  if (!$("#page-overview").hidden) drawCharts();
  if (!$("#page-functions").hidden) renderFunctionStats();
}

function drawChart(canvas, series) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight || 200;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const pad = { l: 44, r: 8, t: 10, b: 22 };
  const pts = state.points;
  const now = pts.length ? pts[pts.length - 1].time_ms : Date.now();
  const oldest = pts.length ? pts[0].time_ms : now;
  const span = Math.min(5 * 60000, Math.max(60000, Math.ceil((now - oldest) / 60000) * 60000)), t0 = now - span;
  let max = 1;
  for (const p of pts) for (const s of series) max = Math.max(max, p[s.key] || 0);
  max = niceMax(max);
  const x = (t) => pad.l + ((t - t0) / span) * (w - pad.l - pad.r);
  const y = (v) => h - pad.b - (v / max) * (h - pad.t - pad.b);
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#8a93a3"; g.strokeStyle = "#edf0f5"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i, yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(pad.l, yy); g.lineTo(w - pad.r, yy); g.stroke();
    g.textAlign = "right"; g.fillText(axis(v), pad.l - 6, yy + 4);
  }
  g.textAlign = "center";
  const step = span / 5;
  for (let i = 5; i >= 0; i--) {
    const s = Math.round((i * step) / 1000);
    g.fillText(i ? (s % 60 ? `-${s}s` : `-${s / 60}m`) : "now", x(now - i * step), h - 6);
  }
  // The second series is dashed, so two equal series both stay visible.
  series.forEach((s, n) => {
    const color = getComputedStyle(document.documentElement).getPropertyValue(s.color).trim();
    const vis = pts.filter((p) => p.time_ms >= t0);
    if (!vis.length) return;
    g.beginPath();
    vis.forEach((p, i) => (i ? g.lineTo(x(p.time_ms), y(p[s.key] || 0)) : g.moveTo(x(p.time_ms), y(p[s.key] || 0))));
    g.strokeStyle = color; g.lineWidth = 2; g.setLineDash(n ? [6, 4] : []); g.stroke(); g.setLineDash([]);
    g.lineTo(x(vis[vis.length - 1].time_ms), y(0)); g.lineTo(x(vis[0].time_ms), y(0)); g.closePath();
    g.globalAlpha = 0.08; g.fillStyle = color; g.fill(); g.globalAlpha = 1;
  });
}
const axis = (v) => (Number.isInteger(v) ? v.toLocaleString("en") : String(Math.round(v * 100) / 100));
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function drawCharts() {
  drawChart($("#chart-rate"), [{ key: "messages_in_per_s", color: "--in" }, { key: "messages_out_per_s", color: "--out" }]);
  drawChart($("#chart-conns"), [{ key: "connections", color: "--conns" }, { key: "subscriptions", color: "--subs" }]);
}

// ---- channels ------------------------------------------------------------

async function loadChannels() {
  const prefix = $("#ch-prefix").value.trim();
  const res = await api("GET", "/api/v1/channels?limit=200&prefix=" + encodeURIComponent(prefix));
  $("#ch-total").textContent = `${res.total} channel${res.total === 1 ? "" : "s"} with subscribers on this node`;
  fillTable("#channels-table", res.channels.map((c) => el("tr", { class: "clickable" + (c.channel === state.channel ? " selected" : ""), "data-channel": c.channel, onclick: () => openChannel(c.channel).catch(showError) },
    el("td", { class: "mono" }, c.channel), el("td", { class: "num" }, fmt(c.subscribers)), el("td", { class: "num" }, fmt(c.messages)), el("td", { class: "num" }, fmt(c.per_s)),
  )), prefix ? `no channel starts with “${prefix}”` : "no channel has subscribers", 4);
}

async function openChannel(ch) {
  state.channel = ch;
  $("#ch-detail").hidden = false;
  $("#ch-name").textContent = ch;
  let d;
  try {
    d = await api("GET", "/api/v1/channels/" + encodeURIComponent(ch));
  } catch (e) {
    $("#ch-members-count").textContent = "";
    $("#ch-members").replaceChildren(el("li", { class: "muted" }, e.message));
    $("#ch-history").replaceChildren();
    return;
  }
  $("#ch-members-count").textContent = d.presence ? d.members.length : "off";
  $("#ch-members").replaceChildren(...(d.members.length ? d.members.map((m) => el("li", {}, m.user || m.conn)) : [el("li", { class: "muted" }, d.presence ? "nobody" : "this channel keeps no presence")]));
  const msgs = d.history.slice().reverse();
  $("#ch-history").replaceChildren(...(msgs.length ? msgs.map((m) => el("li", {}, el("span", { class: "off" }, "#" + m.offset), el("span", { class: "ev" }, m.event || "–"), JSON.stringify(m.data))) : [el("li", { class: "muted" }, d.history_size ? "no messages kept yet" : "this channel keeps no history")]));
}

// ---- connections ---------------------------------------------------------

async function loadConnections() {
  const user = $("#conn-user").value.trim();
  const res = await api("GET", "/api/v1/connections?limit=200" + (user ? "&user=" + encodeURIComponent(user) : ""));
  $("#conn-total").textContent = `${res.total} connection${res.total === 1 ? "" : "s"} on ${res.nodes} node${res.nodes === 1 ? "" : "s"}`;
  fillTable("#conns-table", res.connections.map((c) => el("tr", { "data-user": c.user, "data-conn": c.id },
    el("td", {}, c.user || el("span", { class: "muted" }, "not signed in")),
    el("td", { class: "mono" }, c.id),
    el("td", {}, c.transport),
    el("td", { class: "mono" }, c.node),
    el("td", { title: c.connected_at }, ago(c.connected_at)),
    el("td", { class: "mono" }, c.channels.join(", ") || "–"),
    el("td", {}, c.user ? el("button", { class: "small danger", onclick: () => askDisconnect(c.user) }, "Disconnect") : ""),
  )), user ? `no connection of “${user}”` : "no connections", 7);
}

function askDisconnect(user) {
  state.discUser = user;
  $("#disc-user").textContent = user;
  $("#disc-panel").hidden = false;
  $("#disc-reason").focus();
}

// ---- functions -----------------------------------------------------------

let functionsList = [];
async function loadFunctions() {
  functionsList = (await api("GET", "/api/v1/functions")).functions || [];
  renderFunctionStats();
}
function renderFunctionStats() {
  const stats = Object.fromEntries(((state.stats && state.stats.functions) || []).map((f) => [f.name, f]));
  fillTable("#fns-table", functionsList.map((f) => {
    const s = stats[f.name] || {};
    return el("tr", { class: "clickable" + (f.name === state.fnName ? " selected" : ""), "data-fn": f.name, onclick: () => editFunction(f.name).catch(showError) },
      el("td", { class: "mono" }, f.name), el("td", {}, f.runtime), el("td", { class: "num" }, f.timeout_ms ? f.timeout_ms + " ms" : "default"),
      el("td", { class: "num" }, fmt(s.invocations || 0)), el("td", { class: "num" }, fmt(s.errors || 0)), el("td", { class: "num" }, fmt(s.timeouts || 0)),
      el("td", { class: "num" }, s.invocations ? s.avg_ms.toFixed(2) + " ms" : "–"));
  }), "no functions deployed", 7);
}

function gutter(errLine) {
  const n = $("#fn-source").value.split("\n").length;
  const lines = [];
  for (let i = 1; i <= Math.max(n, 1); i++) lines.push(i === errLine ? `<span class="bad">${i}</span>` : String(i));
  $("#fn-gutter").innerHTML = lines.join("\n");
}

async function editFunction(name) {
  $("#fn-editor").hidden = false;
  $("#fn-error").hidden = true;
  $("#fn-deployed").textContent = "";
  $("#inv-result").hidden = true;
  if (name) {
    const f = await api("GET", "/api/v1/functions/" + encodeURIComponent(name));
    $("#fn-name").value = f.name;
    $("#fn-timeout").value = f.timeout_ms || 100;
    $("#fn-source").value = f.source || "";
  } else {
    $("#fn-name").value = "";
    $("#fn-source").value = "function handle(message, ctx) {\n  ctx.log(\"got\", message.event);\n  return message;\n}\n";
  }
  gutter(0);
  state.fnName = name;
  renderFunctionStats();
  followLog(name);
}

function followLog(name) {
  if (state.fnLog) state.fnLog.abort();
  const log = $("#fn-log");
  log.replaceChildren(el("li", { class: "muted" }, name ? "waiting for lines…" : "deploy the function to see its log"));
  if (!name) return;
  let first = true;
  state.fnLog = follow("/api/v1/functions/" + encodeURIComponent(name) + "/logs?follow=1", (_, l) => {
    if (first) { log.replaceChildren(); first = false; }
    log.prepend(el("li", { class: "lvl-" + l.level }, el("span", { class: "t" }, (l.time || "").slice(11, 19)), l.node ? el("span", { class: "t" }, l.node) : "", l.message));
    while (log.children.length > 200) log.lastChild.remove();
  }, (up, status) => {
    if (!up && status === 404) log.replaceChildren(el("li", { class: "muted" }, "no log: the function is not deployed, or this server keeps no function logs"));
  });
}

async function deployFunction(ev) {
  ev.preventDefault();
  const name = $("#fn-name").value.trim();
  const errBox = $("#fn-error");
  errBox.hidden = true;
  $("#fn-deployed").textContent = "";
  try {
    await api("PUT", "/api/v1/functions/" + encodeURIComponent(name), { runtime: "js", source: $("#fn-source").value, timeout_ms: Number($("#fn-timeout").value) || 100 });
  } catch (e) {
    const m = /line (\d+)(?:, column (\d+))?/.exec(e.message);
    errBox.textContent = (m ? `Line ${m[1]}: ` : "") + e.message;
    errBox.dataset.line = m ? m[1] : "";
    errBox.hidden = false;
    gutter(m ? Number(m[1]) : 0);
    if (m) selectLine(Number(m[1]));
    return;
  }
  gutter(0);
  $("#fn-deployed").textContent = "Deployed " + new Date().toLocaleTimeString();
  if (state.fnName !== name) { state.fnName = name; followLog(name); }
  await loadFunctions();
}

function selectLine(n) {
  const ta = $("#fn-source"), lines = ta.value.split("\n");
  let start = 0;
  for (let i = 0; i < n - 1 && i < lines.length; i++) start += lines[i].length + 1;
  ta.focus();
  ta.setSelectionRange(start, start + (lines[n - 1] || "").length);
}

async function invokeFunction(ev) {
  ev.preventDefault();
  const out = $("#inv-result");
  out.hidden = false;
  let data;
  try { data = JSON.parse($("#inv-data").value); } catch (e) { out.textContent = "Sample data is not JSON: " + e.message; return; }
  try {
    const res = await api("POST", "/api/v1/functions/" + encodeURIComponent($("#fn-name").value.trim()) + "/invoke", { channel: $("#inv-channel").value, event: $("#inv-event").value, user: $("#inv-user").value, data });
    out.textContent = JSON.stringify(res, null, 2);
    out.dataset.action = res.action;
  } catch (e) {
    out.textContent = e.message;
    out.dataset.action = "failed";
  }
}

// ---- associations --------------------------------------------------------

async function loadAssociations() {
  const as = (await api("GET", "/api/v1/associations")).associations || [];
  fillTable("#assoc-table", as.map((a) => el("tr", {},
    el("td", { class: "mono" }, a.pattern), el("td", { class: "mono" }, a.functions.join(" → ")), el("td", {}, a.on_error || "pass"),
    el("td", {}, el("button", { class: "small ghost", onclick: () => { $("#as-pattern").value = a.pattern; $("#as-functions").value = a.functions.join(", "); $("#as-onerror").value = a.on_error || "pass"; } }, "Edit"), " ",
      el("button", { class: "small danger", onclick: () => api("DELETE", "/api/v1/associations?pattern=" + encodeURIComponent(a.pattern)).then(loadAssociations).catch(showError) }, "Delete")),
  )), "no associations: functions run only on channels an association names", 4);
}

// ---- apps: the apps API, with the operator key ----------------------------

function limitsText(l) {
  const parts = [];
  if (l && l.max_connections) parts.push(`${l.max_connections} conns`);
  if (l && l.max_publish_rate) parts.push(`${l.max_publish_rate} msg/s`);
  if (l && l.max_message_bytes) parts.push(`${l.max_message_bytes} B/msg`);
  return parts.join(", ") || "node's";
}

async function loadApps() {
  const note = $("#apps-note"), table = $("#apps-table"), create = $("#app-create");
  try {
    const res = await api("GET", "/api/v1/apps");
    const apps = res.apps || [];
    note.textContent = `${apps.length} app${apps.length === 1 ? "" : "s"} besides the default one (eddy.yaml's). Keys are masked; each app's own keys sign its tokens and API calls.`;
    table.hidden = false;
    create.hidden = false;
    fillTable("#apps-table", apps.map((a) => el("tr", { "data-app": a.id },
      el("td", { class: "mono" }, a.id), el("td", {}, a.name),
      el("td", { class: "mono" }, (a.api_keys || []).map((k) => k.key).join(" ")),
      el("td", { class: "mono" }, (a.pusher && a.pusher.key) || ""),
      el("td", {}, limitsText(a.limits)), el("td", {}, a.created ? ago(a.created) : ""))), "no apps yet: create one below", 6);
  } catch (e) {
    table.hidden = true;
    create.hidden = true;
    note.textContent = e.code === "apps_disabled" ? e.message
      : e.status === 401 ? "The apps API takes the operator key (operator_key): sign in with it to list and create apps."
      : e.status === 404 ? "This server has no apps API (GET /api/v1/apps)." : "Could not list apps: " + e.message;
  }
}

async function createApp(ev) {
  ev.preventDefault();
  const err = $("#app-error");
  err.hidden = true;
  const body = { id: $("#app-id").value.trim() };
  const name = $("#app-name").value.trim();
  if (name) body.name = name;
  let app;
  try {
    app = await api("POST", "/api/v1/apps", body);
  } catch (e) { err.textContent = e.message; err.hidden = false; return; }
  $("#app-created-id").textContent = app.id;
  $("#app-keys").textContent = [
    `JWT key ${app.jwt_keys[0].id} (HS256): ${app.jwt_keys[0].secret}`,
    `API key: ${app.api_keys[0].key}`,
    `Admin key: ${app.admin_key}`,
    `Pusher app id ${app.id}, key ${app.pusher.key}, secret ${app.pusher.secret}`,
  ].join("\n");
  $("#app-created").hidden = false;
  $("#app-form").reset();
  await loadApps();
}

// ---- navigation ----------------------------------------------------------

const loaders = { channels: loadChannels, connections: loadConnections, functions: loadFunctions, associations: loadAssociations, apps: loadApps };
function route() {
  const page = (location.hash || "#overview").slice(1);
  const known = ["overview", ...Object.keys(loaders)].includes(page) ? page : "overview";
  for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== "page-" + known;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === known);
  if (known === "overview") drawCharts();
  else loaders[known]().catch(showError);
}
// showError tells the operator what the server refused, and why (its message).
function showError(e) {
  $("#toast-text").textContent = e && e.message ? e.message : String(e);
  $("#toast").hidden = false;
}

function wire() {
  $("#signin-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("#key").value.trim()); });
  $("#signout").addEventListener("click", () => signOut(""));
  window.addEventListener("hashchange", () => sessionStorage.getItem(KEY) && route());
  window.addEventListener("resize", () => !$("#page-overview").hidden && drawCharts());
  $("#ch-search").addEventListener("submit", (ev) => { ev.preventDefault(); loadChannels().catch(showError); });
  $("#ch-refresh").addEventListener("click", () => openChannel(state.channel).catch(showError));
  $("#ch-publish").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = $("#ch-publish-result");
    let data;
    try { data = JSON.parse($("#ch-data").value); } catch (e) { out.textContent = "Data is not JSON: " + e.message; return; }
    try {
      const res = await api("POST", "/api/v1/channels/" + encodeURIComponent(state.channel) + "/publish", { event: $("#ch-event").value, data });
      out.textContent = `Published at offset ${res.offsets[state.channel]}`;
      openChannel(state.channel);
    } catch (e) { out.textContent = e.message; }
  });
  $("#conn-search").addEventListener("submit", (ev) => { ev.preventDefault(); loadConnections().catch(showError); });
  $("#disc-cancel").addEventListener("click", () => ($("#disc-panel").hidden = true));
  $("#toast-close").addEventListener("click", () => ($("#toast").hidden = true));
  $("#disc-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let res;
    try {
      res = await api("POST", "/api/v1/users/" + encodeURIComponent(state.discUser) + "/disconnect", { reason: $("#disc-reason").value.trim() });
    } catch (e) { showError(e); return; }
    $("#disc-panel").hidden = true;
    $("#conn-total").textContent = `Disconnected ${res.disconnected} connection${res.disconnected === 1 ? "" : "s"} of ${state.discUser} (${res.nodes} node${res.nodes === 1 ? "" : "s"})`;
    setTimeout(() => loadConnections().catch(showError), 300);
  });
  $("#app-form").addEventListener("submit", (ev) => createApp(ev).catch(showError));
  $("#fn-new").addEventListener("click", () => editFunction("").catch(showError));
  $("#fn-form").addEventListener("submit", deployFunction);
  $("#fn-source").addEventListener("input", () => gutter(0));
  $("#fn-source").addEventListener("scroll", () => ($("#fn-gutter").scrollTop = $("#fn-source").scrollTop));
  $("#fn-invoke").addEventListener("submit", invokeFunction);
  $("#assoc-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = $("#as-error");
    err.hidden = true;
    try {
      await api("PUT", "/api/v1/associations", { pattern: $("#as-pattern").value.trim(), functions: $("#as-functions").value.split(",").map((s) => s.trim()).filter(Boolean), on_error: $("#as-onerror").value });
      loadAssociations();
    } catch (e) { err.textContent = e.message; err.hidden = false; }
  });
}

wire();
if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
else signOut("");
