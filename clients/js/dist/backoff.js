function backoffDelay(attempt, base = 500, cap = 3e4, random = Math.random) {
  const exp = Math.min(cap, base * Math.pow(2, Math.max(0, attempt)));
  return Math.floor(random() * exp);
}
export {
  backoffDelay
};
