// filter: refuses messages containing a blocked word (ctx.env.WORDS, comma
// separated) and drops empty ones. Deploy with --env WORDS=darn,heck.
export default function handle(message, ctx) {
  const words = (ctx.env.WORDS || "darn,heck").split(",").map((w) => w.trim().toLowerCase()).filter(Boolean)
  const text = String((message.data && message.data.text) || "")
  if (text.trim() === "") return null // drop: nothing to deliver
  const lower = text.toLowerCase()
  const hit = words.find((w) => lower.includes(w))
  if (hit) ctx.reject("message contains a blocked word")
  return message
}
