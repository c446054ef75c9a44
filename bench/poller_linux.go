//go:build linux

package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// poller reads many subscribers from one goroutine. A read goroutine per
// connection costs, for every message, a second read(2) that finds nothing
// (EAGAIN) and a park and wake of the goroutine; with thousands of
// subscribers that each get a message now and then, that was about half of
// the load tool's CPU per message. The poller keeps its own edge-triggered
// epoll set of the subscribers' sockets and reads a ready socket into a
// buffer it shares among them until a read comes back short (the socket
// is then drained: more data raises a new edge). It waits for its epoll
// descriptor through Go's netpoller (the descriptor is readable when a
// socket is ready), so no thread blocks in epoll_wait.
//
// The sockets stay owned by their net.Conn, and writes (auth, pongs) go
// through it as before. The poller reads a socket's descriptor directly,
// which is safe because only the poller itself (finish) closes a socket
// while it polls it; closeAll closes the rest after stopping the pollers.
// Both the reads and the epoll_wait never block, so they are raw system
// calls: the scheduler's bookkeeping for a system call that may block
// (and sysmon's waking up every 20 µs to check on it) is skipped.
type poller struct {
	f   *os.File // the epoll descriptor, waited on through Go's netpoller
	efd int
	rc  syscall.RawConn

	mu   sync.Mutex
	subs []*sub // by epoll data (index); a finished subscriber's slot is nil

	// Owned by the poller goroutine.
	h      *hist // latency of every subscriber it reads
	buf    []byte
	events []syscall.EpollEvent
	batch  []*sub
	done   chan struct{}
}

// newPoller starts a poller; bufSize is its shared read buffer.
func newPoller(bufSize int) (*poller, error) {
	efd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so os.NewFile registers it with Go's netpoller.
	if err := syscall.SetNonblock(efd, true); err != nil {
		syscall.Close(efd)
		return nil, fmt.Errorf("epoll descriptor non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(efd), "bench-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{f: f, efd: efd, rc: rc, h: new(hist), buf: make([]byte, max(bufSize, 64<<10)),
		events: make([]syscall.EpollEvent, 128), done: make(chan struct{})}
	// A first wait with nothing registered tells whether the netpoller
	// accepted the descriptor: if not, RawConn.Read cannot wait and the
	// caller falls back to a goroutine per connection.
	if err := f.SetReadDeadline(time.Now()); err != nil {
		f.Close()
		return nil, fmt.Errorf("epoll descriptor not pollable: %w", err)
	}
	_ = f.SetReadDeadline(time.Time{})
	go p.run()
	return p, nil
}

// add hands s to the poller; from then on only the poller reads s. Bytes
// s.c has already read are left for the caller to have handled.
func (p *poller) add(s *sub) error {
	tc, ok := s.c.nc.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("poller: %T is not a TCP connection", s.c.nc)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	p.mu.Lock()
	idx := len(p.subs)
	p.subs = append(p.subs, s)
	p.mu.Unlock()
	var cerr error
	sfd := -1
	err = rc.Control(func(fd uintptr) {
		sfd = int(fd)
		// The add reports data already there as a first edge.
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(idx)}
		cerr = syscall.EpollCtl(p.efd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.mu.Lock()
		p.subs[idx] = nil
		p.mu.Unlock()
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	s.fd, s.polled = sfd, true
	return nil
}

func (p *poller) run() {
	defer close(p.done)
	for {
		var n int
		var werr error
		err := p.rc.Read(func(fd uintptr) bool {
			n, werr = epollWaitNow(int(fd), p.events)
			if werr == syscall.EINTR {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil
		})
		if err != nil || werr != nil {
			return // stopped (the descriptor was closed), or epoll failed
		}
		// One lock per wait, not per message: it also orders the
		// subscribers' state written by add's caller before the reads here.
		p.mu.Lock()
		p.batch = p.batch[:0]
		for _, ev := range p.events[:n] {
			p.batch = append(p.batch, p.subs[ev.Fd])
		}
		p.mu.Unlock()
		for i, s := range p.batch {
			if s == nil {
				continue
			}
			if s.h != p.h {
				// Subscribers share the poller's histogram; one that got
				// messages while connecting brings its own.
				p.h.merge(s.h)
				s.h = p.h
			}
			if err := p.read(s); err != nil {
				p.finish(p.events[i].Fd, s, err)
			}
		}
	}
}

// read reads s's socket until a read comes back short and handles the
// whole messages that came. Reads go into the shared buffer; a partial
// frame left at the end moves to a buffer of s's own until the rest arrives.
func (p *poller) read(s *sub) error {
	c := s.c
	for {
		shared := c.r == c.w
		if shared {
			c.rb, c.r, c.w = p.buf, 0, 0
		} else {
			c.reserve()
		}
		space := len(c.rb) - c.w
		n, rerr := readNow(s.fd, c.rb[c.w:])
		var perr error
		if n > 0 {
			c.w += n
			now := time.Now()
			for {
				msg, need, e := c.parse()
				if e != nil {
					perr = e
					break
				}
				if need > 0 {
					c.need = need
					break
				}
				if s.pusher {
					s.handlePusher(msg, now)
				} else {
					_ = s.handle(msg, now)
				}
			}
		}
		if shared {
			c.keepRest()
		}
		switch {
		case perr != nil:
			return perr
		case rerr == syscall.EINTR:
			continue
		case rerr == syscall.EAGAIN:
			return nil // drained (an edge that came with data already read)
		case rerr != nil:
			return rerr
		case n == 0:
			return io.EOF
		case n < space:
			return nil // drained: more data raises a new edge
		}
	}
}

// epollET is EPOLLET as the uint32 the event takes (syscall.EPOLLET is a
// negative int constant).
const epollET = uint32(1) << 31

// readNow is read(2) on a non-blocking descriptor, as a raw system call.
func readNow(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// epollWaitNow is epoll_wait with a zero timeout (epoll_pwait without a
// signal mask, which every architecture has), as a raw system call.
func epollWaitNow(efd int, events []syscall.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(efd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// finish ends s after an error or the server's close.
func (p *poller) finish(idx int32, s *sub, err error) {
	p.mu.Lock()
	p.subs[idx] = nil
	p.mu.Unlock()
	s.err = err
	s.c.close() // also drops it from the epoll set
	close(s.done)
}

// stop ends the poller and waits for it; the subscribers it still had are
// left open with s.done not closed, for closeAll.
func (p *poller) stop() {
	p.f.Close() // wakes the pending wait with an error
	<-p.done
}

// pollers are the run's pollers, or nil where they cannot run.
type pollers struct {
	ps []*poller
	n  int
}

func startPollers(n, bufSize int) (*pollers, error) {
	out := &pollers{}
	for i := 0; i < n; i++ {
		p, err := newPoller(bufSize)
		if err != nil {
			out.stop()
			return nil, err
		}
		out.ps = append(out.ps, p)
	}
	if len(out.ps) == 0 {
		return nil, errors.New("no pollers")
	}
	return out, nil
}

// add hands s to one of the pollers, in turn. Not safe for concurrent use
// with itself: callers hold their own lock.
func (ps *pollers) add(s *sub) error {
	p := ps.ps[ps.n%len(ps.ps)]
	ps.n++
	return p.add(s)
}

func (ps *pollers) stop() {
	for _, p := range ps.ps {
		p.stop()
	}
}
