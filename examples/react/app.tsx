// A small live room in React with eddy-client/react: who is here
// (usePresence), what they say (useChannel), and a box to say something.
// Built with esbuild (see README.md); the browser test in e2e/ runs it.
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { Eddy } from "eddy-client";
import { EddyProvider, useChannel, usePresence } from "eddy-client/react";

type Line = { id: string; user: string; text: string };

function Room({ channel, me }: { channel: string; me: string }) {
  const [lines, setLines] = useState<Line[]>([]);
  const room = useChannel(channel, (event, data, msg) => {
    if (event === "say") setLines((ls) => [...ls, { id: msg.id, user: msg.user ?? "?", text: String(data?.text ?? "") }]);
  });
  const members = usePresence(channel);
  const [text, setText] = useState("");
  const users = [...new Set(members.map((m) => m.user))].sort();
  return (
    <div className="room">
      <aside>
        <h2>Online <span id="count">{users.length}</span></h2>
        <ul id="members">{users.map((u) => <li key={u} className={u === me ? "me" : ""}>{u}</li>)}</ul>
        <p id="state">{room.state}</p>
      </aside>
      <section>
        <ol id="lines">{lines.map((l) => <li key={l.id}><b>{l.user}</b> {l.text}</li>)}</ol>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (text.trim()) void room.publish("say", { text });
            setText("");
          }}
        >
          <input id="text" value={text} onChange={(e) => setText(e.target.value)} placeholder="Say something…" />
          <button type="submit">Send</button>
        </form>
      </section>
    </div>
  );
}

// The page gets its server, token and room from the URL; a real app fetches
// the token from its backend (getToken) instead.
const q = new URLSearchParams(location.search);
const client = new Eddy(q.get("ws") ?? `ws://${location.host}/ws`, { token: q.get("token") ?? "" });
createRoot(document.getElementById("root")!).render(
  <EddyProvider client={client}>
    <h1>Eddy + React</h1>
    <Room channel={q.get("room") ?? "chat:react"} me={q.get("user") ?? ""} />
  </EddyProvider>,
);
