package outbox

import "context"

// Direct is a publisher's own list of outboxes to write: a delivery made
// with one (EnqueueDirect) to an idle outbox over a non-blocking socket is
// not handed to a writer of the Pool but written by the publishing
// goroutine itself, in Flush, once it holds no lock. A delivery to one
// connection then costs one write and no wake-up of another goroutine, and
// the outbox is written while it is still in this core's cache.
//
// Only small fan-outs should be delivered so (the hub decides): the
// publisher's caller waits for its writes, which for thousands of
// subscribers is the shared writers' work. A write never blocks on a full
// socket (see Socket): what it cannot take now, the socket writes on its
// own, and the outbox waits for it as it would with a pool writer.
//
// A Direct belongs to one goroutine at a time. Whoever makes one must
// Flush it before letting go of it: an outbox in the list is claimed (it
// counts as being written) until then.
type Direct struct {
	outs []*Outbox
}

// maxDirect bounds the outboxes one Direct holds before Flush: past it,
// deliveries go to the Pool as usual, so one publish never writes more
// than this many sockets itself.
const maxDirect = 64

// Flush writes what the listed outboxes hold, once each, in the order they
// were listed; an outbox with more to do afterwards (more arrived, or its
// socket holds a backlog) goes on with the Pool. Call it with no lock held.
func (d *Direct) Flush() {
	for i, o := range d.outs {
		d.outs[i] = nil
		if o.step() {
			o.dispatch()
		}
	}
	d.outs = d.outs[:0]
}

type directKey struct{}

// WithDirect returns ctx carrying d, for EnqueueDirect's callers down a
// synchronous delivery path (the in-memory broker delivers in the
// publishing goroutine).
func WithDirect(ctx context.Context, d *Direct) context.Context {
	return context.WithValue(ctx, directKey{}, d)
}

// DirectFrom returns the Direct ctx carries, nil when none.
func DirectFrom(ctx context.Context) *Direct {
	d, _ := ctx.Value(directKey{}).(*Direct)
	return d
}
