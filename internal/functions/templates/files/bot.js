// bot: answers commands on the same channel. "/roll" replies with a die
// roll, "/echo TEXT" with TEXT; the command itself is still delivered.
export default function handle(message, ctx) {
  const text = String((message.data && message.data.text) || "")
  if (!text.startsWith("/")) return message
  const [command, ...rest] = text.slice(1).split(" ")
  let reply
  switch (command) {
    case "echo":
      reply = rest.join(" ")
      break
    case "roll":
      reply = "rolled " + (1 + Math.floor(Math.random() * 6))
      break
    default:
      reply = "unknown command /" + command + " (try /echo or /roll)"
  }
  ctx.publish(message.channel, "bot", { text: reply, to: message.user || null })
  return message
}
