// Package eddyfn is the guest side of Eddy's WebAssembly function ABI for
// Go programs built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (a WASI
// reactor). A function's main package calls Handle from init and leaves
// main empty:
//
//	func init() { eddyfn.Handle(func(in eddyfn.Input) eddyfn.Output { return eddyfn.PassOn(in) }) }
//	func main() {}
//
// The ABI (docs/functions.md, "WebAssembly functions"), which any language
// can implement:
//
//	eddy_alloc(size i32) -> ptr i32          a buffer of size bytes the host writes the input into
//	eddy_handle(ptr i32, len i32) -> i64     handles the input; returns ptr<<32 | len of the output,
//	                                         which stays valid until the next call
//
// The input is the JSON of Input, the output the JSON of Output: the same
// contract as HTTP functions.
package eddyfn

import (
	"encoding/json"
	"unsafe"
)

// Input is one message in transit.
type Input struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	User    string          `json:"user,omitempty"`
	TS      int64           `json:"ts"`
	Info    json.RawMessage `json:"info,omitempty"`
}

// Message is a message a function passes on or publishes.
type Message struct {
	Channel string          `json:"channel,omitempty"`
	Event   string          `json:"event,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Output is what a function decided: Action "pass" (with Message, or nil to
// keep the input), "drop", or "reject" (with Reason); Publish lists extra
// messages to publish.
type Output struct {
	Action  string    `json:"action"`
	Message *Message  `json:"message,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Publish []Message `json:"publish,omitempty"`
}

// PassOn passes the input on unchanged.
func PassOn(Input) Output { return Output{Action: "pass"} }

// Reject refuses the message; the publisher sees reason.
func Reject(reason string) Output { return Output{Action: "reject", Reason: reason} }

var (
	handler func([]byte) []byte
	// in and out are kept here so that the garbage collector does not free
	// them while the host reads or writes them.
	in, out []byte
)

// Handle registers the function. Call it from init.
func Handle(f func(Input) Output) {
	handler = func(input []byte) []byte { return Serve(input, f) }
}

// HandleRaw registers a function that decodes the input JSON and encodes
// the output JSON itself (to use another JSON library, or none).
func HandleRaw(f func(input []byte) []byte) { handler = f }

// Serve is Handle's work for one call: it decodes input, runs f and encodes
// its output. A bad input is rejected.
func Serve(input []byte, f func(Input) Output) []byte {
	var msg Input
	var res Output
	if err := json.Unmarshal(input, &msg); err != nil {
		res = Reject("eddyfn: bad input: " + err.Error())
	} else {
		res = f(msg)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return []byte(`{"action":"reject","reason":"eddyfn: cannot encode the output"}`)
	}
	return b
}

//go:wasmexport eddy_alloc
func alloc(size uint32) uint32 {
	if cap(in) < int(size) {
		in = make([]byte, size)
	}
	in = in[:size]
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(in))))
}

//go:wasmexport eddy_handle
func handle(ptr, size uint32) uint64 {
	if handler == nil {
		out = []byte(`{"action":"reject","reason":"eddyfn: no function registered (call eddyfn.Handle from init)"}`)
	} else {
		out = handler(in[:size])
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))<<32 | uint64(len(out))
}
