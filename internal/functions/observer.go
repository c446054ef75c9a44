package functions

import (
	"errors"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// Observer sees what functions write with ctx.log and how they fail: the
// function logs (internal/functions/fnlog) and the status channel watch
// through it. Its methods are called on the invocation's goroutine and
// must not block.
type Observer interface {
	// FunctionLog gets one ctx.log line, after the log limits let it through.
	FunctionLog(function, line string)
	// FunctionFailed gets every failure of a published message's run
	// (operators' dry runs get theirs as the answer); timeout says the
	// function ran out of time.
	FunctionFailed(function, channel string, err error, timeout bool)
}

// logLineFunc is the OnLogLine of function name's runtime, nil without
// an observer.
func (e *Engine) logLineFunc(name string) func(string) {
	if e.opts.Observer == nil {
		return nil
	}
	return func(line string) { e.opts.Observer.FunctionLog(name, line) }
}

func (e *Engine) observeFailure(c *compiled, channel string, err error) {
	if e.opts.Observer != nil {
		e.opts.Observer.FunctionFailed(c.fn.Name, channel, err, errors.Is(err, fnrt.ErrTimeout))
	}
}
