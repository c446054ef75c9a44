/**
 * Splits one WebSocket text message into its frames: the server may batch
 * several JSON objects separated by "\n". Empty lines are skipped.
 */
export function splitFrames(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    if (line) out.push(line);
    start = end + 1;
  }
  return out;
}
