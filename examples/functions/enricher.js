// enricher: adds the server time and the publisher's display name.
//
// message.data becomes an object (a non-object payload is wrapped as
// {"value": payload}) with two more fields:
//   server_ts  server time in unix milliseconds
//   name       ctx.info.name from the publisher's token, else the user id;
//              left out when neither exists (e.g. the HTTP API)
function handle(message, ctx) {
  var d = message.data;
  if (d === null || typeof d !== "object" || Array.isArray(d)) {
    d = { value: d };
  }
  d.server_ts = Date.now();
  var name = (ctx.info && typeof ctx.info.name === "string") ? ctx.info.name : message.user;
  if (name) {
    d.name = name;
  }
  message.data = d;
  return message;
}
