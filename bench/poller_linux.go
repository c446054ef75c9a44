//go:build linux

package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// poller opens and reads many subscribers from one goroutine.
//
// A read goroutine per connection cost, for every message, a second
// read(2) that found nothing (EAGAIN) and a park and wake of the goroutine;
// with thousands of subscribers that each get a message now and then, that
// was about half of the load tool's CPU per message. And a connection
// opened through net.Dial costs a goroutine, its registration with Go's
// netpoller, keep-alive and no-delay options, getsockname, getpeername,
// getsockopt and four deadline changes: a dozen system calls besides the
// socket, connect, write and read that the protocol needs.
//
// So the poller makes the sockets itself (non-blocking), keeps them in an
// edge-triggered epoll set of its own, and reads a ready socket into a
// buffer it shares among them until a read comes back short (the socket is
// then drained: more data raises a new edge). It waits for its epoll
// descriptor through Go's netpoller (the descriptor is readable when a
// socket is ready), so no thread blocks in epoll_wait. A connection goes
// through the same handshake as dialWS and connectSub: the upgrade request,
// its 101 answer, then the auth and subscribe frames in one write, and it
// is live once subscribed. The socket options the kernel defaults to stand
// (no TCP keep-alive, Nagle on: the tool writes one small message at a time
// and waits for the answer, so Nagle never holds a write back).
//
// Only the poller closes a socket while it polls it (finish, failDial);
// closeAll closes the rest after stopping the pollers, so a descriptor
// number is never read after it may have been reused. Reads, writes and
// epoll_wait never block, so they are raw system calls: the scheduler's
// bookkeeping for a system call that may block is skipped.
type poller struct {
	f  *os.File // the epoll descriptor, waited on through Go's netpoller
	rc syscall.RawConn

	mu    sync.Mutex
	subs  []*sub // by epoll data (index); a finished subscriber's slot is nil
	ndial int    // connections being opened; while > 0 a 1 s deadline is armed

	// Owned by the poller goroutine.
	efd    int
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
	// Deadlines work only on a descriptor the netpoller took; without it
	// RawConn.Read could not wait, and the run uses goroutines instead.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("epoll descriptor not pollable: %w", err)
	}
	p := &poller{f: f, efd: efd, rc: rc, h: new(hist), buf: make([]byte, max(bufSize, 64<<10)),
		events: make([]syscall.EpollEvent, 128), done: make(chan struct{})}
	go p.run()
	return p, nil
}

// rawTarget is where a poller's connections go.
type rawTarget struct {
	host string // for the dialer's choice of a loopback source address
	sa   syscall.Sockaddr
	v6   bool
}

// parseRawTarget resolves a ws:// URL whose host is an IP address; other
// URLs (host names) are for dialWS.
func parseRawTarget(host, port string) (*rawTarget, bool) {
	ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil {
		return nil, false
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &rawTarget{host: host, sa: &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}}, true
	}
	if a.Zone() != "" {
		return nil, false
	}
	return &rawTarget{host: host, sa: &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}, v6: true}, true
}

// dial starts opening s's connection to t; dl.done says how it went. An
// error here (socket or connect refused at once) is returned instead.
func (p *poller) dial(s *sub, d *dialer, t *rawTarget, dl *dialing) error {
	family := syscall.AF_INET
	if t.v6 {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if d != nil && !t.v6 {
		if la, ok := d.localAddr(t.host).(*net.TCPAddr); ok {
			sa := &syscall.SockaddrInet4{}
			copy(sa.Addr[:], la.IP.To4())
			if err := syscall.Bind(fd, sa); err != nil {
				syscall.Close(fd)
				return fmt.Errorf("bind %s: %w", la.IP, err)
			}
		}
	}
	if err := syscall.Connect(fd, t.sa); err != nil && err != syscall.EINPROGRESS {
		syscall.Close(fd)
		return fmt.Errorf("connect: %w", err)
	}
	// Over loopback the connection is usually up by now: the request goes
	// at once, else on the first edge (EPOLLOUT once connected).
	n, err := writeOnce(fd, dl.req)
	switch err {
	case nil:
		dl.req = dl.req[n:]
	case syscall.EAGAIN, syscall.EINTR, syscall.ENOTCONN:
	default:
		syscall.Close(fd) // refused by now: the first write says so (once)
		return fmt.Errorf("connect: %w", err)
	}
	s.c.fd = fd
	s.h = p.h
	s.dl = dl
	s.polled = true
	p.mu.Lock()
	idx := len(p.subs)
	p.subs = append(p.subs, s)
	if p.ndial++; p.ndial == 1 {
		_ = p.f.SetReadDeadline(time.Now().Add(time.Second))
	}
	p.mu.Unlock()
	// The add reports what is already there as a first edge.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET, Fd: int32(idx)}
	if err := syscall.EpollCtl(p.efd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		p.subs[idx] = nil
		p.ndial--
		p.mu.Unlock()
		s.c.close()
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
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
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.expire()
			continue
		}
		if err != nil || werr != nil {
			return // stopped (the descriptor was closed), or epoll failed
		}
		// One lock per wait, not per message: it also orders what dial's
		// caller wrote into the subscriber before the reads here.
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
			if err := p.serve(s); err != nil {
				p.finish(p.events[i].Fd, s, err)
			}
		}
	}
}

// expire fails the connections that took too long to open, and keeps a
// deadline armed while any are being opened.
func (p *poller) expire() {
	now := time.Now()
	type late struct {
		idx int32
		s   *sub
	}
	var lates []late
	p.mu.Lock()
	for i, s := range p.subs {
		if s != nil && s.dl != nil && now.After(s.dl.deadline) {
			lates = append(lates, late{int32(i), s})
		}
	}
	p.mu.Unlock()
	for _, l := range lates {
		p.finish(l.idx, l.s, fmt.Errorf("no subscription after %s", dialTimeout))
	}
	p.mu.Lock()
	if p.ndial > 0 {
		_ = p.f.SetReadDeadline(now.Add(time.Second))
	} else {
		_ = p.f.SetReadDeadline(time.Time{})
	}
	p.mu.Unlock()
}

// serve handles an edge of s's socket: it writes what is left of the
// upgrade request, then reads until a read comes back short and handles
// what came. Once live, reads go into the shared buffer; a partial frame
// left at the end moves to a buffer of s's own until the rest arrives.
func (p *poller) serve(s *sub) error {
	c := s.c
	if dl := s.dl; dl != nil && len(dl.req) > 0 {
		n, err := writeOnce(c.fd, dl.req)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return nil // still connecting: EPOLLOUT comes when connected
		}
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		if dl.req = dl.req[n:]; len(dl.req) > 0 {
			return nil
		}
	}
	for {
		shared := s.dl == nil && c.r == c.w
		if shared {
			c.rb, c.r, c.w = p.buf, 0, 0
		} else {
			c.reserve()
		}
		space := len(c.rb) - c.w
		n, rerr := readOnce(c.fd, c.rb[c.w:])
		var perr error
		if n > 0 {
			c.w += n
			perr = p.consume(s, time.Now())
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

// consume handles the whole messages read: the handshake's answer and
// the frames before the subscription is confirmed while opening, then
// bench messages.
func (p *poller) consume(s *sub, now time.Time) error {
	c := s.c
	if dl := s.dl; dl != nil {
		if !dl.upgraded {
			n, ok, err := upgradeResponse(c.rb[c.r:c.w])
			if !ok {
				if c.w-c.r > 16<<10 {
					return errors.New("upgrade response too long")
				}
				return nil
			}
			if err != nil {
				return err
			}
			c.r += n
			dl.upgraded = true
			if len(dl.frames) > 0 {
				if err := writeNow(c.fd, dl.frames); err != nil {
					return err
				}
				s.subSent = true
			}
		}
		for s.state < 2 {
			msg, need, err := c.parse()
			if err != nil {
				return err
			}
			if need > 0 {
				c.need = need
				return nil
			}
			if s.pusher {
				err = s.pusherHello(msg)
			} else {
				err = s.handle(msg, now)
			}
			if err != nil {
				return err
			}
		}
		p.live(s)
	}
	for {
		msg, need, err := c.parse()
		if err != nil {
			return err
		}
		if need > 0 {
			c.need = need
			return nil
		}
		if s.pusher {
			s.handlePusher(msg, now)
		} else {
			_ = s.handle(msg, now)
		}
	}
}

// live ends the opening of s: it is subscribed.
func (p *poller) live(s *sub) {
	dl := s.dl
	s.dl = nil
	p.mu.Lock()
	p.ndial--
	p.mu.Unlock()
	if s.c.r == s.c.w {
		// The opening's buffer goes: reads use the shared one from now on.
		s.c.rb, s.c.own, s.c.r, s.c.w = nil, nil, 0, 0
	}
	dl.done(s, time.Since(dl.start), nil)
}

// finish ends s after an error or the server's close, while opening or live.
func (p *poller) finish(idx int32, s *sub, err error) {
	p.mu.Lock()
	p.subs[idx] = nil
	if s.dl != nil {
		p.ndial--
	}
	p.mu.Unlock()
	s.c.close() // also drops it from the epoll set
	if dl := s.dl; dl != nil {
		s.dl = nil
		var ce *CloseError
		var errno syscall.Errno
		if s.firstErr != "" && (err == io.EOF || errors.As(err, &ce) || errors.As(err, &errno)) {
			err = errors.New(s.firstErr) // what the server said before closing
		}
		dl.done(s, 0, err)
		return
	}
	s.err = err
	close(s.done)
}

// stop ends the poller and waits for it; the subscribers it still had are
// left open with s.done not closed, for closeAll.
func (p *poller) stop() {
	p.f.Close() // wakes the pending wait with an error
	<-p.done
}

// epollET is EPOLLET as the uint32 the event takes (syscall.EPOLLET is a
// negative int constant).
const epollET = uint32(1) << 31

// readOnce is read(2) on a non-blocking descriptor, as a raw system call.
func readOnce(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// writeOnce is write(2) on a non-blocking descriptor, as a raw system call.
func writeOnce(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// writeNow writes b whole to a connected non-blocking socket. The tool
// writes a few small frames into an empty send buffer, so a write that
// would block means the connection is stuck: an error, not a wait.
func writeNow(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := writeOnce(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}

func closeFD(fd int) error { return syscall.Close(fd) }

// epollWaitNow is epoll_wait with a zero timeout (epoll_pwait without a
// signal mask, which every architecture has), as a raw system call.
func epollWaitNow(efd int, events []syscall.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(efd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// pollers are the run's pollers; a nil *pollers means none.
type pollers struct {
	ps []*poller
	n  atomic.Uint64
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

// dial opens s's connection on one of the pollers, in turn.
func (ps *pollers) dial(s *sub, d *dialer, t *rawTarget, dl *dialing) error {
	p := ps.ps[(ps.n.Add(1)-1)%uint64(len(ps.ps))]
	return p.dial(s, d, t, dl)
}

func (ps *pollers) stop() {
	for _, p := range ps.ps {
		p.stop()
	}
}
