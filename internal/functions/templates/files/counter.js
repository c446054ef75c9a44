// counter: numbers every message of a channel with ctx.kv.incr, which is
// atomic across the function's VMs and, with Redis, across the cluster.
export default function handle(message, ctx) {
  const n = ctx.kv.incr("count:" + message.channel)
  const data = typeof message.data === "object" && message.data !== null ? message.data : { value: message.data }
  data.seq = n
  message.data = data
  return message
}
