package wsframe

import "sync"

// BufferSize is the size of the buffers a Reader borrows while bytes wait:
// one read takes up to this much. A longer frame gets a buffer of its own
// size, let go once it is decoded.
const BufferSize = 4096

var buffers = sync.Pool{New: func() any { return new([BufferSize]byte) }}

// Reader decodes a connection's frames from the bytes read into the
// buffer it lends (Buffer, Filled), holding a buffer only while bytes of
// an unfinished frame wait: an idle connection's Reader is a few words.
// Like the Decoder it is for one goroutine at a time.
type Reader struct {
	Decoder

	buf  []byte            // buf[off:] is read and not yet decoded
	off  int               //
	lent *[BufferSize]byte // the pooled buffer buf is in, if it is
}

// Buffer returns where the next read is to put bytes: never empty. It
// borrows a buffer when the Reader holds none.
func (r *Reader) Buffer() []byte {
	if r.buf == nil {
		r.lent = buffers.Get().(*[BufferSize]byte)
		r.buf = r.lent[:0]
	}
	return r.buf[len(r.buf):cap(r.buf)]
}

// Filled records that n bytes were read into the slice Buffer returned.
func (r *Reader) Filled(n int) { r.buf = r.buf[:len(r.buf)+n] }

// Next decodes the next complete frame among the bytes read. ok is false
// when none is complete (read more: Buffer has room for it), err non-nil
// when the connection must fail (an *Error). ev.Payload is valid until the
// next call of Next or Buffer.
func (r *Reader) Next() (ev Event, ok bool, err error) {
	for {
		ev, n, need, err := r.Decoder.Next(r.buf[r.off:])
		if err != nil {
			return Event{}, false, err
		}
		if n == 0 {
			r.keep(need)
			return Event{}, false, nil
		}
		r.off += n
		if ev.Kind != None {
			return ev, true, nil
		}
	}
}

// keep moves the bytes not yet decoded to the start of a buffer that has
// room for need bytes in all (need 0: the header is incomplete, which a
// buffer always has room for).
func (r *Reader) keep(need int) {
	rest := r.buf[r.off:]
	switch {
	case need > cap(r.buf):
		big := make([]byte, len(rest), need)
		copy(big, rest)
		r.giveBack()
		r.buf = big
	case r.off > 0:
		r.buf = r.buf[:copy(r.buf, rest)]
	}
	r.off = 0
	if len(r.buf) == 0 && r.lent == nil {
		// A buffer of a long frame's own size: let it go once decoded.
		r.buf = nil
	}
}

// Release gives the buffer back when no bytes wait in it: call it when the
// connection has nothing more to read for now.
func (r *Reader) Release() {
	if r.buf != nil && len(r.buf) == r.off {
		r.giveBack()
		r.buf, r.off = nil, 0
	}
}

// Buffered reports how many bytes were read and not yet decoded.
func (r *Reader) Buffered() int { return len(r.buf) - r.off }

// Reset drops the buffer and any unfinished message, for a connection
// whose read side ended.
func (r *Reader) Reset() {
	r.giveBack()
	r.buf, r.off = nil, 0
	r.Decoder = Decoder{MaxPayload: r.MaxPayload}
}

func (r *Reader) giveBack() {
	if r.lent != nil {
		buffers.Put(r.lent)
		r.lent = nil
	}
}
