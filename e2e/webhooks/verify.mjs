// Reads POSTs an Eddy node sent in Pusher's webhook format, as a JSON list
// of {headers, body} on stdin (headers with lower-case names, body the raw
// text), and checks each with the official pusher SDK's webhook
// validation. Prints one JSON line per POST: {valid, events, time_ms}.
// Usage: node verify.mjs KEY SECRET < posts.json
import Pusher from "pusher";

const [key, secret] = process.argv.slice(2);
if (!key || !secret) {
  console.error("usage: node verify.mjs KEY SECRET < posts.json");
  process.exit(2);
}
const pusher = new Pusher({ appId: "1", key, secret, cluster: "mt1" });
let input = "";
for await (const chunk of process.stdin) input += chunk;
for (const post of JSON.parse(input)) {
  const webhook = pusher.webhook({ headers: post.headers, rawBody: post.body });
  const valid = webhook.isValid();
  const out = { valid };
  if (valid) {
    out.events = webhook.getEvents();
    out.time_ms = webhook.getTime().getTime();
  }
  console.log(JSON.stringify(out));
}
