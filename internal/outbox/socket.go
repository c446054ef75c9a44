package outbox

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Socket is a net.Conn whose writes never block on a peer that stopped
// reading, so a shared writer is never held by one slow socket. A write
// puts on the socket what the kernel takes at once and keeps the rest;
// a goroutine of the connection's own (alive only while such a remainder
// exists) then writes it as the peer reads, bounded by the write timeout.
// Bytes stay in order: while a remainder waits, later writes (the
// WebSocket library's frames, pongs, the close frame) queue behind it, so
// a frame cut by a partial write is always completed before the next one.
//
// An Outbox writing through a Socket (its Writer implementing Backlogger)
// stops writing while a remainder waits, counts it against MaxQueueBytes,
// and is dispatched again when the remainder is written.
type Socket struct {
	net.Conn
	raw     syscall.RawConn
	timeout time.Duration
	backlog atomic.Int64 // len(pending), readable without mu

	mu         sync.Mutex
	pending    []byte // accepted but not yet on the socket, in order
	spare      []byte
	draining   bool   // the drain goroutine owns the socket's writes
	err        error  // the write error that ended the socket
	closeAfter bool   // Close came while draining: close once drained
	onWritten  func() // runs once the remainder is written or failed
}

// NewSocket wraps c, whose writes must then all go through the Socket.
// timeout bounds how long the remainder may wait for the peer to read.
// It reports false, and c must be used as it is, when c gives no access
// to its file descriptor (a TLS connection, for one).
func NewSocket(c net.Conn, timeout time.Duration) (*Socket, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	return &Socket{Conn: c, raw: raw, timeout: timeout}, true
}

// Write takes all of p without blocking: what the socket does not take
// now is written later, in order, by the socket's own goroutine. An error
// is only returned once the socket has failed.
func (s *Socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return 0, s.err
	case s.closeAfter:
		return 0, net.ErrClosed
	case s.draining:
		s.pending = append(s.pending, p...)
		s.backlog.Store(int64(len(s.pending)))
		return len(p), nil
	}
	n, err := s.tryWrite(p)
	if err != nil {
		s.err = err
		return n, err
	}
	if n == len(p) {
		return n, nil
	}
	s.pending = append(s.spare[:0], p[n:]...)
	s.spare = nil
	s.backlog.Store(int64(len(s.pending)))
	s.draining = true
	go s.drain()
	return len(p), nil
}

// tryWrite writes what the kernel takes without waiting; s.mu held.
func (s *Socket) tryWrite(p []byte) (int, error) {
	op := writeOps.Get().(*writeOp)
	op.p, op.n, op.err = p, 0, nil
	err := s.raw.Write(op.fn)
	n := op.n
	if err == nil {
		err = op.err
	}
	op.p, op.err = nil, nil
	writeOps.Put(op)
	return n, err
}

// writeOp is one non-blocking write, pooled with the function RawConn.Write
// calls: a closure made per write cost three allocations on the hot path
// of every delivery.
type writeOp struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var writeOps = sync.Pool{New: func() any {
	op := &writeOp{}
	op.fn = op.write
	return op
}}

func (op *writeOp) write(fd uintptr) bool {
	for op.n < len(op.p) {
		m, err := writeFD(fd, op.p[op.n:])
		if m > 0 {
			op.n += m
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			op.err = err
			return true
		}
	}
	return true // done, or EAGAIN: never wait for the socket here
}

// drain writes the remainder, blocking on its own goroutine as long as the
// peer reads at all within the timeout.
func (s *Socket) drain() {
	for {
		s.mu.Lock()
		buf := s.pending
		if len(buf) == 0 {
			s.draining = false
			s.pending = nil
			f := s.onWritten
			s.onWritten = nil
			closeNow := s.closeAfter
			s.mu.Unlock()
			_ = s.Conn.SetWriteDeadline(time.Time{}) // the non-blocking writes use none
			if closeNow {
				_ = s.Conn.Close()
			}
			if f != nil {
				f()
			}
			return
		}
		s.pending = s.spare[:0]
		s.spare = nil
		s.mu.Unlock()

		_ = s.Conn.SetWriteDeadline(time.Now().Add(s.timeout))
		_, err := s.Conn.Write(buf)

		s.mu.Lock()
		if cap(buf) <= 64<<10 {
			s.spare = buf[:0]
		}
		if err != nil {
			s.err = err
			s.pending = nil
			s.backlog.Store(0)
			s.draining = false
			f := s.onWritten
			s.onWritten = nil
			s.mu.Unlock()
			_ = s.Conn.Close()
			if f != nil {
				f()
			}
			return
		}
		s.backlog.Store(int64(len(s.pending)))
		s.mu.Unlock()
	}
}

// Backlog implements Backlogger: bytes accepted but not yet on the socket.
func (s *Socket) Backlog() int { return int(s.backlog.Load()) }

// WhenWritten implements Backlogger.
func (s *Socket) WhenWritten(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.draining {
		return false
	}
	s.onWritten = f
	return true
}

// SetWriteDeadline does nothing: writes never block, and the socket's own
// timeout bounds how long a remainder may wait.
func (s *Socket) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only (see SetWriteDeadline).
func (s *Socket) SetDeadline(t time.Time) error { return s.Conn.SetReadDeadline(t) }

// Close closes the connection; with a remainder still waiting, once it is
// written (or the timeout ends it), so a close frame queued behind it
// still reaches the peer.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.draining {
		s.closeAfter = true
		s.mu.Unlock()
		return nil
	}
	s.closeAfter = true
	s.mu.Unlock()
	return s.Conn.Close()
}
