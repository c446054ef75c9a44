function base64UrlDecode(part) {
  let b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  while (b64.length % 4) b64 += "=";
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}
function decodeJwtExp(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return void 0;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1]));
    return typeof claims?.exp === "number" ? claims.exp : void 0;
  } catch {
    return void 0;
  }
}
export {
  decodeJwtExp
};
