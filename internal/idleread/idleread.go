// Package idleread is a connection reader that holds no buffer while its
// peer is silent: it borrows one from a shared pool when bytes arrive and
// gives it back once they are consumed. A WebSocket server holds one reader
// per connection and most connections are idle most of the time, so the
// buffers in use follow the connections that are talking, not all of them.
package idleread

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// BufferSize is the size of the borrowed buffers: what one read system
// call may take at once.
const BufferSize = 512

var buffers = sync.Pool{New: func() any { return new([BufferSize]byte) }}

// borrowed counts the buffers Readers hold, for tests (and a figure worth
// having: it is what the connections' read buffers cost right now).
var borrowed atomic.Int64

// Borrowed reports how many buffers Readers hold right now.
func Borrowed() int64 { return borrowed.Load() }

func borrow() *[BufferSize]byte {
	borrowed.Add(1)
	return buffers.Get().(*[BufferSize]byte)
}

func giveBack(b *[BufferSize]byte) {
	borrowed.Add(-1)
	buffers.Put(b)
}

// Reader reads a connection through borrowed buffers. Like a bufio.Reader
// it is for one goroutine at a time.
type Reader struct {
	raw syscall.RawConn
	buf *[BufferSize]byte // borrowed while it holds unread bytes, else nil
	r   int               // buf[r:w] is unread
	w   int
}

// New returns a Reader of c, or false when c gives no access to its file
// descriptor (a TLS connection, for one), which must then be read as usual.
func New(c net.Conn) (*Reader, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	return &Reader{raw: raw}, true
}

// Read reads up to len(p) bytes. A read that is as long as a buffer goes
// straight into p; a shorter one fills a borrowed buffer and serves from
// it. It waits, holding no buffer, while nothing has arrived; the
// connection's read deadline applies.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.buf != nil {
		n := copy(p, r.buf[r.r:r.w])
		r.r += n
		if r.r == r.w {
			r.release()
		}
		return n, nil
	}
	if len(p) >= BufferSize {
		n, _, err := r.read(p)
		return n, err
	}
	n, buf, err := r.read(nil)
	if n == 0 {
		return 0, err
	}
	m := copy(p, buf[:n])
	if m < n {
		r.buf, r.r, r.w = buf, m, n // keep the rest, with its buffer
	} else {
		giveBack(buf)
	}
	return m, nil
}

// read makes one read system call, once the socket is readable, into p,
// or when p is nil into a buffer it borrows only then (and returns, with
// bytes in it). It returns io.EOF when the peer closed its side.
func (r *Reader) read(p []byte) (int, *[BufferSize]byte, error) {
	var n int
	var buf *[BufferSize]byte
	var rerr error
	err := r.raw.Read(func(fd uintptr) bool {
		dst := p
		if dst == nil {
			buf = borrow()
			dst = buf[:]
		}
		for {
			n, rerr = syscall.Read(int(fd), dst)
			if rerr != syscall.EINTR {
				break
			}
		}
		if n <= 0 && buf != nil {
			giveBack(buf)
			buf = nil
		}
		if rerr == syscall.EAGAIN {
			// Nothing yet: wait for the socket without holding a buffer.
			n, rerr = 0, nil
			return false
		}
		return true
	})
	switch {
	case err != nil: // the deadline passed or the connection was closed
		return 0, nil, err
	case rerr != nil:
		return 0, nil, &net.OpError{Op: "read", Net: "tcp", Err: rerr}
	case n <= 0:
		return 0, nil, io.EOF
	}
	return n, buf, nil
}

func (r *Reader) release() {
	giveBack(r.buf)
	r.buf, r.r, r.w = nil, 0, 0
}

// Buffered reports how many bytes have been read from the connection and
// not yet from the Reader.
func (r *Reader) Buffered() int { return r.w - r.r }
