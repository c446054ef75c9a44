class EddyError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "EddyError";
    this.code = code;
    if (status !== void 0) this.status = status;
  }
}
export {
  EddyError
};
