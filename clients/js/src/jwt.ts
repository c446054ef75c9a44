function base64UrlDecode(part: string): string {
  let b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  while (b64.length % 4) b64 += "=";
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

/**
 * Returns the `exp` claim (unix seconds) of a JWT without verifying it, or
 * undefined when the token is malformed or has no numeric `exp`.
 */
export function decodeJwtExp(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1]!));
    return typeof claims?.exp === "number" ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}
