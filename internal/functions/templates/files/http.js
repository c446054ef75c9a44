// http: lets your own HTTP service decide. The message is POSTed to
// ctx.env.WEBHOOK_URL (its host in allow_hosts); the service answers
// {"action": "pass" | "drop" | "reject", "reason"?, "data"?}. When it cannot
// be reached the message passes unchanged.
export default async function handle(message, ctx) {
  const res = await ctx.fetch(ctx.env.WEBHOOK_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ channel: message.channel, event: message.event, data: message.data, user: message.user }),
    timeout: 1000,
  })
  if (!res.ok) return message
  const decision = await res.json()
  if (decision.action === "drop") return null
  if (decision.action === "reject") ctx.reject(decision.reason || "refused by the webhook")
  if (decision.data !== undefined) message.data = decision.data
  return message
}
