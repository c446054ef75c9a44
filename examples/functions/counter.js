// counter: per-channel message counts, published to "stats:<channel>".
//
// Honest limits: the engine runs each JS function on a small pool of VMs
// (one per CPU by default) and globals live per VM, so this function cannot
// keep one exact total. Each VM instead counts what it saw and, at most
// once a second, publishes the *increment* since its previous report:
//
//   channel "stats:chat:lobby", event "stats", data {"channel":"chat:lobby","count":12}
//
// Summing the counts gives the exact total of reported messages. A VM
// reports only when it handles a message, so the last second's counts of a
// VM that goes quiet stay pending until its next message, and there are up
// to one report per VM per second, not one per second overall. Counts are
// lost when the function is redeployed.
var counts = {};
var lastReport = 0;

function handle(message, ctx) {
  if (message.channel.indexOf("stats:") === 0) return message;
  counts[message.channel] = (counts[message.channel] || 0) + 1;
  var now = Date.now();
  if (now - lastReport >= 1000) {
    lastReport = now;
    var sent = 0;
    for (var ch in counts) {
      if (sent === 16) break; // ctx.publish allows 16 messages per call; the rest waits
      ctx.publish("stats:" + ch, "stats", { channel: ch, count: counts[ch] });
      delete counts[ch];
      sent++;
    }
  }
  return message;
}
