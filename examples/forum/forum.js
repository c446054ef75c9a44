// Live updates for a topic page: posts are created with the forum's own POST,
// and arrive on every open page through Eddy (event "post" on forum:<topic>).
"use strict";

(function () {
  const { wsURL, topic } = window.FORUM;
  const list = document.getElementById("posts");
  const banner = document.getElementById("banner");
  const seen = new Set([...list.querySelectorAll("li.post")].map((li) => li.dataset.id));
  const stats = { received: 0, connects: 0 };
  window.forum = { stats };

  function setLive(state, text) {
    const el = document.getElementById("live");
    el.dataset.state = state;
    document.getElementById("live-text").textContent = text;
  }

  function showError(text) {
    banner.textContent = text;
    banner.hidden = false;
  }

  function addPost(p) {
    const id = String(p.id);
    if (seen.has(id)) return;
    seen.add(id);
    const empty = list.querySelector("li.empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.className = "post fresh";
    li.dataset.id = id;
    const meta = document.createElement("div");
    meta.className = "meta";
    const b = document.createElement("b");
    b.textContent = p.author;
    const time = document.createElement("time");
    time.textContent = new Date(p.ts).toLocaleString();
    meta.append(b, " ", time);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = p.text;
    li.append(meta, text);
    list.append(li);
    li.scrollIntoView({ block: "nearest" });
  }

  // Tokens come from the forum (it knows who is logged in), never from Eddy.
  async function getToken() {
    const res = await fetch("/eddy-token", { credentials: "same-origin" });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error((body.error && body.error.message) || "token endpoint answered " + res.status);
      err.code = "unauthorized";
      throw err;
    }
    return body.token;
  }

  const eddy = new Eddy(wsURL, { getToken, backoffBase: 300, backoffCap: 5000 });
  let everConnected = false;
  eddy.on("connecting", () => setLive("connecting", everConnected ? "reconnecting…" : "connecting…"));
  eddy.on("connected", () => {
    everConnected = true;
    stats.connects++;
    banner.hidden = true;
    setLive("live", "live");
  });
  eddy.on("reconnecting", () => setLive("connecting", "reconnecting…"));
  eddy.on("error", (err) => {
    if (err.code === "unauthorized") {
      showError("Live updates are off: " + err.message);
      setLive("off", "offline");
      eddy.close();
    }
  });

  const channel = eddy.subscribe("forum:" + topic);
  channel.on("post", (p) => {
    stats.received++;
    addPost(p);
  });
  channel.on("subscribed", (ev) => {
    // forum:* keeps no history in Eddy: after a gap, the forum itself has the posts.
    if (ev.resubscribed && !ev.recovered) showError("Reconnected: reload the page to see posts you may have missed.");
  });
  channel.on("error", (err) => showError("Live updates are off: " + err.message));

  const form = document.getElementById("new-post");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = document.getElementById("text");
    const text = input.value.trim();
    if (!text) return;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const res = await fetch(form.action, {
        method: "POST",
        headers: { Accept: "application/json" },
        body: new URLSearchParams({ text }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error((body.error && body.error.message) || "the forum answered " + res.status);
      input.value = "";
      addPost(body.post);
    } catch (err) {
      showError("Not posted: " + err.message);
    } finally {
      button.disabled = false;
    }
  });
})();
