/**
 * The reconnect delay for a zero-based `attempt`, with full jitter:
 * a uniformly random number of milliseconds in [0, min(cap, base * 2^attempt)).
 */
export function backoffDelay(
  attempt: number,
  base = 500,
  cap = 30_000,
  random: () => number = Math.random,
): number {
  const exp = Math.min(cap, base * Math.pow(2, Math.max(0, attempt)));
  return Math.floor(random() * exp);
}
