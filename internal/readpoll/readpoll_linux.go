//go:build linux

package readpoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// poller is the process's epoll set and the goroutine that waits on it.
// It waits for its epoll descriptor through Go's netpoller (the descriptor
// is readable when a socket in the set is ready), so no thread blocks in
// epoll_wait, and then collects the ready sockets without blocking.
type poller struct {
	efd int
	f   *os.File
	rc  syscall.RawConn

	mu    sync.Mutex
	slots []slot   // by the index half of a Token
	free  []uint32 // indexes of empty slots
	count int      // registrations held
}

// slot is one registration. gen tells a registration from an earlier one
// of the same slot, whose events may still be on their way.
type slot struct {
	w   Waker
	gen uint32
}

// epollET is EPOLLET as the event mask's bit (the syscall package has it
// as a negative int).
const epollET = 1 << 31

var (
	startOnce sync.Once
	global    *poller
	startErr  error
)

// start makes the process's poller on first use.
func start() (*poller, error) {
	startOnce.Do(func() { global, startErr = newPoller() })
	return global, startErr
}

func newPoller() (*poller, error) {
	efd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so os.NewFile registers it with Go's netpoller.
	if err := syscall.SetNonblock(efd, true); err != nil {
		_ = syscall.Close(efd)
		return nil, fmt.Errorf("epoll descriptor non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(efd), "readpoll")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	// Deadlines work only on a descriptor the netpoller took; without it
	// RawConn.Read could not wait for the set.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("epoll descriptor not pollable: %w", err)
	}
	p := &poller{efd: efd, f: f, rc: rc}
	go p.run()
	return p, nil
}

// Supported reports whether Watch can work here.
func Supported() bool {
	_, err := start()
	return err == nil
}

// Watch adds the socket behind rc to the set; w is told each time bytes
// arrive. The socket must stay open until Unwatch returns.
func Watch(rc syscall.RawConn, w Waker) (Token, error) {
	p, err := start()
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	var idx uint32
	if n := len(p.free); n > 0 {
		idx = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		idx = uint32(len(p.slots))
		p.slots = append(p.slots, slot{})
	}
	s := &p.slots[idx]
	s.gen++
	s.w = w
	p.count++
	tok := Token(uint64(s.gen)<<32 | uint64(idx))
	p.mu.Unlock()

	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(idx), Pad: int32(uint32(tok >> 32))}
	var cerr error
	err = rc.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(p.efd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.release(tok)
		return 0, fmt.Errorf("epoll add: %w", err)
	}
	return tok, nil
}

// Unwatch takes the socket out of the set; its Waker is not called after
// Unwatch returns, except for an event the poller had already collected.
// Call it once per Token, while the socket is open (after its close the
// kernel has dropped it from the set already, and the descriptor's number
// may name another socket).
func Unwatch(rc syscall.RawConn, tok Token) {
	p := global
	if p == nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(p.efd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	p.release(tok)
}

func (p *poller) release(tok Token) {
	idx, gen := uint32(tok), uint32(tok>>32)
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(idx) >= len(p.slots) || p.slots[idx].gen != gen || p.slots[idx].w == nil {
		return
	}
	p.slots[idx].w = nil
	p.free = append(p.free, idx)
	p.count--
}

// Watched reports how many sockets are registered (for tests).
func Watched() int {
	p := global
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// run waits for ready sockets and wakes their readers, for the life of the
// process.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	wake := make([]Waker, 0, len(events))
	err := p.rc.Read(func(uintptr) bool {
		for {
			n, err := syscall.EpollWait(p.efd, events, 0)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				// Nothing ready: wait for the set to become readable.
				return false
			}
			p.mu.Lock()
			for _, ev := range events[:n] {
				idx, gen := uint32(ev.Fd), uint32(ev.Pad)
				if int(idx) < len(p.slots) && p.slots[idx].gen == gen && p.slots[idx].w != nil {
					wake = append(wake, p.slots[idx].w)
				}
			}
			p.mu.Unlock()
			for i, w := range wake {
				w.Wake()
				wake[i] = nil
			}
			wake = wake[:0]
			if n < len(events) {
				return false
			}
		}
	})
	// Only a closed descriptor ends the wait, and nothing closes it.
	if err != nil && !errors.Is(err, os.ErrClosed) {
		panic(fmt.Sprintf("readpoll: waiting for the epoll set: %v", err))
	}
}
