// Package functions is Eddy's functions engine ("Echo functions"):
// user-deployed middleware that every published message passes through
// before it is stored and fanned out.
//
// Functions are deployed by name (JavaScript or WebAssembly run in-process, or an HTTP
// endpoint) and associated with channel patterns. Engine.Apply runs a
// message through the chains of the associations that match its channel;
// see docs/functions.md for the contracts and ordering rules.
package functions

import (
	"context"
	"errors"
	"fmt"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// Message is a message in transit as functions see it.
type Message = fnrt.Message

// Function is a deployed function. Runtime is "js" (Source), "http" (URL,
// Secret) or "wasm" (Module).
type Function = fnrt.Function

// Runtime names.
const (
	RuntimeJS   = "js"
	RuntimeHTTP = "http"
	RuntimeWasm = "wasm"
)

// on_error policies.
const (
	OnErrorPass = "pass"
	OnErrorDrop = "drop"
)

// Association runs Functions, in order, on messages whose channel matches
// Pattern. OnError says what to do when a function fails (times out,
// crashes, its endpoint is down): "pass" (default) continues with the
// message as it was before that function, "drop" drops the message.
type Association struct {
	Pattern   string   `json:"pattern"`
	Functions []string `json:"functions"`
	OnError   string   `json:"on_error,omitempty"`
}

// InvokeResult is the outcome of a dry run (Engine.Invoke). Action is
// "pass", "drop", "reject", or "error" when the function failed (Reason
// says why).
type InvokeResult struct {
	Action  string   `json:"action"`
	Message *Message `json:"message,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	// At is where a thrown error was raised in the function's source
	// ("name.ts:7:11"), when known.
	At      string    `json:"at,omitempty"`
	Publish []Message `json:"publish"`
}

// Store persists functions and associations. Implementations must be safe
// for concurrent use. The engine validates everything before calling a Put,
// writes through to the store before changing what it runs, and re-reads
// everything with LoadAll on New and Reload.
//
// Contract:
//   - PutFunction replaces the function with the same Name; PutAssociation
//     the association with the same Pattern. Each call is atomic: a reader
//     (LoadAll, possibly on another node) sees the old or the new value,
//     never a mix.
//   - DeleteFunction and DeleteAssociation of a missing item return nil.
//   - LoadAll returns a consistent view; order does not matter. Items it
//     cannot read are left out and reported in a *LoadError returned with
//     the rest.
//   - Secrets (Function.Secret) are stored as given.
//
// A shared store (e.g. Redis in cluster mode) must make a node's Put
// visible to other nodes' LoadAll; telling the other nodes to call
// Engine.Reload is the caller's business.
type Store interface {
	LoadAll(ctx context.Context) ([]Function, []Association, error)
	PutFunction(ctx context.Context, fn Function) error
	DeleteFunction(ctx context.Context, name string) error
	PutAssociation(ctx context.Context, a Association) error
	DeleteAssociation(ctx context.Context, pattern string) error
}

// RejectedError means a function refused the message (ctx.reject, a thrown
// error, or an HTTP function answering "reject"). Nothing was published.
type RejectedError struct {
	Function string
	Reason   string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("rejected by function %q: %s", e.Function, e.Reason)
}

// BadRequestError means the request (a deploy, an association) or a
// function's output is invalid: a function changed message.channel,
// published to an invalid channel, or a deploy failed to compile.
type BadRequestError struct {
	Function string // may be empty
	Message  string
}

func (e *BadRequestError) Error() string {
	if e.Function == "" {
		return e.Message
	}
	return fmt.Sprintf("function %q: %s", e.Function, e.Message)
}

// LoadError is returned by Store.LoadAll, along with everything it could
// read, when some stored items are unreadable (a corrupt file): the engine
// logs and counts each and runs the rest, so one bad file cannot stop a
// node from starting.
type LoadError struct {
	Errs []error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("%d stored items unreadable, first: %v", len(e.Errs), e.Errs[0])
}

// UnavailableError means a function could not be started in time (all the
// VMs of its pool stayed busy); nothing was published.
type UnavailableError struct {
	Function string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("function %q is busy; try again", e.Function)
}

// ErrNotFound is wrapped by errors about missing functions and
// associations.
var ErrNotFound = errors.New("not found")

func badRequest(fn, format string, args ...any) error {
	return &BadRequestError{Function: fn, Message: fmt.Sprintf(format, args...)}
}
