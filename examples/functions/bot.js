// bot: answers chat commands on the same channel with event "bot".
//
//   /help  lists the commands
//   /time  tells the server time
//
// The command is message.data when it is a string, else message.data.text.
// The bot's own replies (event "bot") pass through untouched, so a reply
// can never trigger another reply. The command message itself is
// published as usual.
function commandOf(message) {
  var d = message.data;
  var text = typeof d === "string" ? d : (d !== null && typeof d === "object" ? d.text : null);
  if (typeof text !== "string") return "";
  return text.trim().split(/\s+/)[0];
}

function handle(message, ctx) {
  if (message.event === "bot") return message;
  switch (commandOf(message)) {
    case "/help":
      ctx.publish(message.channel, "bot", { text: "Commands: /help, /time" });
      break;
    case "/time":
      ctx.publish(message.channel, "bot", { text: "Server time: " + new Date().toISOString() });
      break;
  }
  return message;
}
