// Package fnrt is the seam between the functions engine and its runtimes.
//
// A runtime (JavaScript, HTTP, ...) turns a deployed Function into an
// Instance; the engine calls Instance.Run for every message that passes
// through the function. The types here are re-exported by package functions,
// which is what the rest of the server uses; runtimes import only this
// package so that package functions can import the runtimes.
package fnrt

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// Message is a message in transit as functions see it.
type Message struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	User    string          `json:"user,omitempty"` // publisher's JWT sub; "" for the HTTP API
	Info    json.RawMessage `json:"-"`              // publisher's token `info` claim (ctx.info in JS)
	TS      int64           `json:"ts"`             // unix ms
}

// Function is a deployed function.
type Function struct {
	Name           string            `json:"name"`
	Runtime        string            `json:"runtime"` // "js" or "http"
	Source         string            `json:"source,omitempty"`
	URL            string            `json:"url,omitempty"`
	Secret         string            `json:"secret,omitempty"`
	TimeoutMS      int               `json:"timeout_ms,omitempty"`
	Env            map[string]string `json:"env,omitempty"`
	MaxConcurrency int               `json:"max_concurrency,omitempty"`
	// MaxMemoryMB is the memory budget of one JS invocation (0: default).
	MaxMemoryMB int `json:"max_memory_mb,omitempty"`
	// AllowHosts are the hosts ctx.fetch may reach (JS only): names or
	// addresses, or "*.example.com" for subdomains.
	AllowHosts []string `json:"allow_hosts,omitempty"`
	// Language of Source (JS only): "js" (default; a script or an ES
	// module) or "ts" (TypeScript). Modules and TypeScript are transpiled
	// when the function is compiled; Source stays as deployed.
	Language string `json:"language,omitempty"`
	// Module is a wasm function's WebAssembly binary (base64 in JSON).
	Module []byte `json:"module,omitempty"`
}

// Action is what a function decided to do with a message.
type Action string

// The actions a function can take.
const (
	Pass   Action = "pass"
	Drop   Action = "drop"
	Reject Action = "reject"
)

// Result is the outcome of one successful invocation.
//
// For Pass, Message is the function's output: the runtime copies Channel,
// Event and Data from what the function returned (Channel as returned, so the
// engine can refuse a change) and keeps User, Info and TS of the input.
// Publish holds the extra messages the function emitted; runtimes fill only
// Channel, Event and Data.
type Result struct {
	Action  Action
	Message Message
	Reason  string
	Publish []Message
	// At is where in the user's source a thrown error was raised
	// ("name.ts:7:11"), when the runtime knows; empty otherwise.
	At string
}

// Instance is a compiled, ready-to-run function. Run is safe for concurrent
// use. An error from Run is a function *failure* (timeout, crash, bad
// output, endpoint down): the engine handles it with the association's
// on_error policy. A deliberate refusal is a Result with Action Reject, not an
// error.
type Instance interface {
	Run(ctx context.Context, msg Message) (Result, error)
	// Close releases the instance's resources. The engine may still call
	// Run from work that started before Close (it swaps functions while
	// messages are in flight): such calls must not crash, and may fail.
	Close() error
}

// Config is what the engine passes to a runtime along with the Function.
type Config struct {
	// Logger is already tagged with the function name.
	Logger *slog.Logger
	// Timeout is the per-invocation limit, already resolved from
	// Function.TimeoutMS and the runtime default.
	Timeout time.Duration
	// PoolSize bounds concurrent runs for runtimes that pool interpreters.
	PoolSize int
	// MaxMemory is the memory budget of one invocation in bytes, already
	// resolved from Function.MaxMemoryMB and the default (JS only).
	MaxMemory int64
	// OnLog, when set, decides whether a function's log line may be written
	// (the engine's per-function rate limit); OnLogDropped counts a line
	// that was not.
	OnLog        func() bool
	OnLogDropped func()
	// OnLogLine, when set, gets each line written (the function logs).
	OnLogLine func(line string)
	// KV is the store behind ctx.kv; nil leaves functions without one.
	KV KV
	// AllowPrivateURLs lets ctx.fetch reach non-public addresses.
	AllowPrivateURLs bool
	// Secrets backs ctx.secrets; nil leaves it empty.
	Secrets Secrets
}

// Secrets is what runtimes read secrets through. Redact replaces every
// secret value in s by a mask naming the secret: runtimes pass what a
// function logs and every error or rejection reason through it.
type Secrets interface {
	Secret(name string) (string, bool)
	Names() []string
	Redact(s string) string
}

// Runtime compiles functions of one kind. Compile must validate the
// function completely (syntax, required entry points) and return an error
// whose message is fit to show to the person deploying it.
type Runtime interface {
	Compile(fn Function, cfg Config) (Instance, error)
	Close() error
}

// ErrTimeout is wrapped by Run errors caused by the invocation timeout.
var ErrTimeout = errors.New("timeout: function timed out")

// ErrResourceLimit is wrapped by Run errors of an invocation stopped for
// using more memory than its budget (or asking for an allocation larger
// than the budget allows).
var ErrResourceLimit = errors.New("resource_limit: function exceeded its memory budget")

// ErrUnavailable is wrapped by Run errors when the function could not be
// started in time (every VM of its pool stayed busy): it never ran.
var ErrUnavailable = errors.New("unavailable: function is busy")

// Limits shared by all runtimes.
const (
	MaxDataBytes   = 256 << 10 // a message's data, in and out
	MaxInfoBytes   = 16 << 10  // the publisher's info claim passed to functions
	MaxPublish     = 16        // messages emitted by one invocation
	MaxReasonBytes = 512       // rejection reasons are truncated to this
	MaxEventBytes  = 256       // event names produced by functions
)

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
