// counter: exact per-channel message counts, kept in the functions
// key-value store.
//
// Every message adds one to the key "count:<channel>" with ctx.kv.incr,
// which is atomic across the function's VMs and, in cluster mode (the
// store is Redis), across nodes: the totals are exact. Each time a total
// reaches a multiple of REPORT_EVERY (env, default 100) the invocation that
// reached it publishes it, so every multiple is reported exactly once:
//
//   channel "stats:chat:lobby", event "stats", data {"channel":"chat:lobby","count":1200}
//
// Limits: a scope holds at most 10,000 keys, so counts of more channels
// than that fail (the message passes, on_error "pass"); the counts survive
// a redeploy of the function but, in memory mode, not a restart.
function handle(message, ctx) {
  if (message.channel.indexOf("stats:") === 0) return message;
  var n = ctx.kv.incr("count:" + message.channel, 1);
  var every = Math.max(1, Math.floor(+ctx.env.REPORT_EVERY) || 100);
  if (n % every === 0) {
    ctx.publish("stats:" + message.channel, "stats", { channel: message.channel, count: n });
  }
  return message;
}
