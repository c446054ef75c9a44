// translate: adds a translation of data.text from a translation API
// (POST {text, target} -> {text}) at ctx.env.TRANSLATE_URL, authenticated
// with the secret TRANSLATE_KEY. Its host must be in allow_hosts. When the
// API fails the message goes on untranslated.
export default async function handle(message, ctx) {
  const text = message.data && message.data.text
  if (typeof text !== "string" || text === "") return message
  const res = await ctx.fetch(ctx.env.TRANSLATE_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + (ctx.secrets.TRANSLATE_KEY || "") },
    body: JSON.stringify({ text, target: ctx.env.TARGET || "fr" }),
    timeout: 1000,
  })
  if (!res.ok) {
    ctx.log("translation API answered", res.status)
    return message
  }
  const out = await res.json()
  message.data.translated = out.text
  return message
}
