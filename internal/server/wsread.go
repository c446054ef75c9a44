package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/readpoll"
	"github.com/eddyrt/eddy/internal/wsframe"
)

// Reading a plain-TCP, uncompressed WebSocket without a goroutine of its
// own. gws reads each connection in a goroutine blocked in a read for the
// connection's whole life: its g and stack were about 2.3 KiB of the 8 KiB
// an idle connection cost. Here the node's epoll set (readpoll) says when
// bytes arrive, and only then a handler goroutine (handlerPool) reads the
// socket until it is empty, decodes the frames (wsframe) and handles them
// as the gws read loop would: the same OnMessage checks, pongs, close
// answers and close codes. Writes still go through gws. TLS and
// permessage-deflate connections, and a connection whose client sent
// frames before the handshake's answer, keep gws's read loop.
//
// A connection's frames are handled in order, one at a time: its state
// (pollIdle, pollRunning, pollAgain, pollDone) lets one reader run at a
// time, and a Wake that comes while it runs makes it read once more
// instead of starting a second one. A flooding client holds one reader,
// which handles a frame before it reads more, so the kernel's socket
// buffer and TCP hold the rest, as they did with gws.
//
// The connection's socket leaves the epoll set when it is closed, whoever
// closes it (pollConn.Close: gws after a close frame, the outbox socket
// after a failed write, an abort): that is the one place that sees every
// close, and it comes before the descriptor is gone.

const (
	pollIdle    uint32 = iota // no reader runs; a Wake starts one
	pollRunning               // a reader runs
	pollAgain                 // a reader runs and must read once more before it stops
	pollDone                  // the read side ended: Wakes do nothing
)

// pollConn is a connection's TCP socket read through the epoll set. It is
// the net.Conn beneath the outbox socket, so that its Close is the socket's.
type pollConn struct {
	net.Conn
	raw    syscall.RawConn
	s      *Server
	socket *gws.Conn // set before the first reader runs
	token  readpoll.Token
	state  atomic.Uint32
	closed atomic.Bool // Close ran: the socket left the set

	// The read deadline, kept here since no read waits in Go's netpoller.
	deadlineMu sync.Mutex
	deadline   *time.Timer
	expired    atomic.Bool

	rd wsframe.Reader // owned by the reader
}

// watchConn registers c, a plain TCP connection, with the epoll set, or
// returns nil when c cannot be read that way. The connection is held
// (pollRunning) until startReading, so Wakes during the handshake wait.
func (s *Server) watchConn(c net.Conn) *pollConn {
	sc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &pollConn{Conn: c, raw: raw, s: s}
	p.rd.MaxPayload = s.readMaxPayload()
	p.state.Store(pollRunning)
	if p.token, err = readpoll.Watch(raw, p); err != nil {
		s.log.Debug("epoll registration failed; reading with a goroutine", "err", err)
		return nil
	}
	return p
}

// SyscallConn lets the outbox socket write to the descriptor.
func (p *pollConn) SyscallConn() (syscall.RawConn, error) { return p.raw, nil }

// Close takes the socket out of the epoll set, closes it and lets the
// reader find it closed (which ends the connection's read side).
func (p *pollConn) Close() error {
	if p.closed.CompareAndSwap(false, true) {
		readpoll.Unwatch(p.raw, p.token)
	}
	err := p.Conn.Close()
	p.Wake()
	return err
}

// SetReadDeadline ends the read side at t, as a read blocked past its
// deadline would end gws's read loop: teardown sets one after its close
// frame, so a peer that never answers it does not keep the connection.
// The zero time clears it.
func (p *pollConn) SetReadDeadline(t time.Time) error {
	p.deadlineMu.Lock()
	defer p.deadlineMu.Unlock()
	if p.deadline != nil {
		p.deadline.Stop()
		p.deadline = nil
	}
	p.expired.Store(false)
	if t.IsZero() {
		return nil
	}
	p.deadline = time.AfterFunc(time.Until(t), func() {
		p.expired.Store(true)
		p.Wake()
	})
	return nil
}

// SetDeadline sets the read deadline here and the write deadline on the
// socket.
func (p *pollConn) SetDeadline(t time.Time) error {
	_ = p.SetReadDeadline(t)
	return p.Conn.SetWriteDeadline(t)
}

// Wake starts a reader, or makes the running one read again.
func (p *pollConn) Wake() {
	for {
		switch st := p.state.Load(); st {
		case pollIdle:
			if p.state.CompareAndSwap(pollIdle, pollRunning) {
				p.s.handlers.run(p.read, nil)
				return
			}
		case pollRunning:
			if p.state.CompareAndSwap(pollRunning, pollAgain) {
				return
			}
		default: // pollAgain, pollDone
			return
		}
	}
}

// startReading lets the connection be read, once socket is set up: from
// now on Wakes start readers. What arrived during the handshake is read now.
func (p *pollConn) startReading(socket *gws.Conn) {
	p.socket = socket
	if !p.state.CompareAndSwap(pollRunning, pollIdle) {
		// A Wake came meanwhile (pollAgain).
		p.state.Store(pollRunning)
		p.s.handlers.run(p.read, nil)
	}
}

// stopBeforeReading ends a connection whose handshake failed (gws closed
// it): no reader ever runs.
func (p *pollConn) stopBeforeReading() { p.state.Store(pollDone) }

// read is one reader's run: it reads and handles until the socket is empty
// and no Wake came meanwhile, or until the connection's read side ends.
func (p *pollConn) read() {
	for {
		if err := p.readAll(); err != nil {
			p.state.Store(pollDone)
			p.end(err)
			return
		}
		if p.state.CompareAndSwap(pollRunning, pollIdle) {
			return
		}
		p.state.CompareAndSwap(pollAgain, pollRunning)
	}
}

// errPeerClosed ends the read side after the client's close frame, which
// was answered already.
var errPeerClosed = errors.New("websocket: closed by the client")

// readAll reads the socket until it has nothing more (EAGAIN), handling
// every complete frame; bytes of an unfinished frame stay in the reader's
// buffer. A non-nil error ends the connection's read side.
func (p *pollConn) readAll() error {
	for {
		if p.expired.Load() {
			return os.ErrDeadlineExceeded
		}
		n, err := p.readSome(p.rd.Buffer())
		if err == syscall.EAGAIN {
			p.rd.Release()
			return nil
		}
		if err != nil {
			return err
		}
		p.rd.Filled(n)
		for {
			ev, ok, err := p.rd.Next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if err := p.handle(ev); err != nil {
				return err
			}
		}
	}
}

// handle does what gws's read loop does with one decoded frame.
func (p *pollConn) handle(ev wsframe.Event) error {
	switch ev.Kind {
	case wsframe.Message:
		if c := connOf(p.socket); c != nil && c.acceptMessage(ev.Op == wsframe.OpText, ev.Payload) {
			// Already on a handler goroutine: the frame is handled here.
			c.runFrame(ev.Payload)
		}
	case wsframe.Ping:
		if c := connOf(p.socket); c != nil {
			c.touch()
		}
		_ = p.socket.WritePong(ev.Payload)
	case wsframe.Pong:
		if c := connOf(p.socket); c != nil {
			c.touch()
		}
	case wsframe.Close:
		// gws answers with the code only; an empty close frame gets 1000
		// here (gws's WriteClose makes no empty one), which RFC 6455
		// allows as well.
		if code := wsframe.CloseReply(ev.Payload); code != 0 {
			_ = p.socket.WriteClose(code, nil)
		} else {
			_ = p.socket.WriteClose(wsframe.CloseNormal, nil)
		}
		return errPeerClosed
	}
	return nil
}

// end closes the connection for err, as gws's read loop does when it ends
// (a close frame with the protocol error's code, or 1000 and the read
// error, unless one went already; gws then closes the socket), and runs
// the close handler.
func (p *pollConn) end(err error) {
	_ = p.SetReadDeadline(time.Time{})
	p.rd.Reset()
	var fe *wsframe.Error
	switch {
	case errors.As(err, &fe):
		_ = p.socket.WriteClose(fe.Code, []byte(fe.Reason))
	case err == errPeerClosed:
	default:
		_ = p.socket.WriteClose(wsframe.CloseNormal, []byte(err.Error()))
	}
	if c := connOf(p.socket); c != nil {
		c.cleanup()
	}
}

// readSome makes one non-blocking read into b: syscall.EAGAIN when the
// socket has nothing, io.EOF when the client closed its side.
func (p *pollConn) readSome(b []byte) (int, error) {
	op := pollReads.Get().(*pollRead)
	op.b = b
	err := p.raw.Read(op.fn)
	n, rerr := op.n, op.err
	op.b, op.err = nil, nil
	pollReads.Put(op)
	switch {
	case err != nil: // closed
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// pollRead is one read system call, pooled with the function RawConn.Read
// calls, so a read allocates nothing.
type pollRead struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var pollReads = sync.Pool{New: func() any {
	op := &pollRead{}
	op.fn = op.read
	return op
}}

// read never waits in Go's netpoller (returns true): the epoll set says
// when to read again.
func (op *pollRead) read(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), op.b)
		if err == syscall.EINTR {
			continue
		}
		op.n, op.err = max(n, 0), err
		return true
	}
}

// noReader stands for the reader gws keeps for a connection it does not
// read: nothing reads through it.
var noReader = bufio.NewReaderSize(eofReader{}, 16)

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// readMaxPayload is the longest message a client may send (gws's
// ReadMaxPayloadSize): frames between max_message_bytes and this get a
// too_large error and the connection stays up.
func (s *Server) readMaxPayload() int { return s.cfg.MaxMessageBytes*2 + 4096 }
