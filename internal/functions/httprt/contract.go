package httprt

import "github.com/eddyrt/eddy/internal/functions/fnrt"

// DecodeResponse interprets raw, a function's answer in the HTTP functions'
// response format, for the input msg. WebAssembly functions answer in the
// same format (package wasmrt), so both are held to one contract.
func DecodeResponse(raw []byte, msg fnrt.Message) (fnrt.Result, error) { return decode(raw, msg) }
