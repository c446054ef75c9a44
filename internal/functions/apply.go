package functions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// Apply runs msg through the functions associated with msg.Channel and
// returns every message to publish, in order: the (possibly modified)
// original first unless it was dropped, then the messages the functions
// emitted with ctx.publish, each already run through the functions of its
// own channel (depth first, in emission order).
//
// Associations matching the channel run most specific pattern first (see
// runsBefore); within one, functions run in the listed order, each seeing
// the previous one's output. A drop stops all chains (messages emitted so
// far are still published). A rejection anywhere, including while
// processing an emitted message, returns *RejectedError and nothing is
// published. A function changing message.channel, or emitting to an invalid
// channel, yields *BadRequestError. A function failure is handled by its
// association's on_error.
//
// When no association matches, Apply returns []Message{msg} and allocates
// nothing else.
func (e *Engine) Apply(ctx context.Context, msg Message) ([]Message, error) {
	s := e.snap.Load()
	if len(s.match(msg.Channel)) == 0 {
		if e.closed.Load() {
			return nil, ErrClosed
		}
		return []Message{msg}, nil
	}
	a := applier{e: e, s: s}
	if err := a.process(ctx, msg, 0); err != nil {
		return nil, err
	}
	return a.out, nil
}

type emitted struct {
	function string
	msg      Message
}

type applier struct {
	e       *Engine
	s       *snapshot
	out     []Message
	emitted int
}

func (a *applier) process(ctx context.Context, msg Message, depth int) error {
	cur := msg
	dropped := false
	var emits []emitted
chains:
	for _, as := range a.s.match(msg.Channel) {
		for _, name := range as.Functions {
			c := a.s.funcs[name]
			var res fnrt.Result
			var err error
			if c == nil {
				err = fmt.Errorf("function %q is not deployed", name)
				a.e.log.Warn("association names a missing function", "pattern", as.Pattern, "function", name)
			} else {
				res, err = a.e.run(ctx, c, cur)
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(err, fnrt.ErrUnavailable) {
					// The function never ran: neither pass nor drop is
					// what its association asked for. The publisher may retry.
					return &UnavailableError{Function: name}
				}
				if as.drop {
					dropped = true
					break chains
				}
				continue
			}
			for _, p := range res.Publish {
				m, err := a.e.stampEmitted(name, p)
				if err != nil {
					return err
				}
				emits = append(emits, emitted{name, m})
			}
			switch res.Action {
			case fnrt.Reject:
				return &RejectedError{Function: name, Reason: res.Reason}
			case fnrt.Drop:
				dropped = true
				break chains
			default:
				if res.Message.Channel != msg.Channel {
					return badRequest(name, "changed message.channel from %q to %q; functions may not move messages (use ctx.publish)", msg.Channel, res.Message.Channel)
				}
				cur = res.Message
			}
		}
	}
	if !dropped {
		a.out = append(a.out, cur)
	}
	for _, em := range emits {
		reason := ""
		switch {
		case depth+1 > a.e.opts.MaxDepth:
			reason = "depth"
		case a.emitted >= MaxMessagesPerApply:
			reason = "limit"
		}
		if reason != "" {
			a.e.metrics.dropped.WithLabelValues(reason).Inc()
			a.e.log.Warn("emitted message dropped", "reason", reason, "function", em.function,
				"channel", em.msg.Channel, "origin_channel", msg.Channel, "depth", depth+1)
			continue
		}
		a.emitted++
		if err := a.process(ctx, em.msg, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// stampEmitted validates a message emitted by function fn and completes
// it: emitted messages carry no user and the current time.
func (e *Engine) stampEmitted(fn string, m Message) (Message, error) {
	if m.Channel == "" {
		return m, badRequest(fn, "published to an empty channel name")
	}
	if e.opts.ValidChannel != nil {
		if err := e.opts.ValidChannel(m.Channel); err != nil {
			return m, badRequest(fn, "published to invalid channel %q: %v", m.Channel, err)
		}
	}
	m.User, m.Info = "", nil
	m.TS = time.Now().UnixMilli()
	return m, nil
}
