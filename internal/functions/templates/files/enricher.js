// enricher: adds who sent the message and when the server received it, and
// a word count, so clients need not trust the sender for them.
export default function handle(message, ctx) {
  const data = typeof message.data === "object" && message.data !== null ? message.data : { value: message.data }
  const text = typeof data.text === "string" ? data.text : ""
  data.from = message.user || "server"
  data.received_at = new Date(message.ts).toISOString()
  data.words = text ? text.trim().split(/\s+/).length : 0
  message.data = data
  return message
}
