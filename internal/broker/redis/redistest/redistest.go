// Package redistest runs a throwaway redis-server for tests: a real server on
// a free local port, without persistence unless asked, stopped when the
// test ends.
//
// A test that asks for a server fails (never skips) when redis-server is not
// on PATH or does not start, so a CI machine without Redis is noticed.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one redis-server process. Its port stays the same across Restart.
type Server struct {
	tb   testing.TB
	bin  string
	port int
	dir  string
	// durable runs with an append-only file fsynced before every reply, so
	// what Redis acknowledged survives Stop (SIGKILL) and Restart.
	durable bool
	// extra arguments for redis-server (cluster.go, sentinel.go); bin may
	// be redis-sentinel there.
	extra []string
	conf  string // a config file given before the arguments (redis-sentinel)

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

// Start runs a redis-server for tb and stops it when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, false)
}

// StartDurable is Start with an append-only file fsynced on every write:
// a Restart after Stop keeps every acknowledged write.
func StartDurable(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, true)
}

func start(tb testing.TB, durable bool, extra ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: redis-server is not on PATH (%v); install it, e.g. apt-get install -y redis-server", err)
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), durable: durable, extra: extra}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(); err != nil {
			tb.Fatalf("redistest: find a free port: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			tb.Cleanup(s.Stop)
			return s
		}
	}
	tb.Fatalf("redistest: redis-server did not start: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	out := &lockedWriter{}
	aof := []string{"--appendonly", "no"}
	if s.durable {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--dir", s.dir,
		"--protected-mode", "no",
		// A replica (cluster.go, sentinel.go) syncs at once, not after 5 s.
		"--repl-diskless-sync-delay", "0",
	}, aof...)
	if s.conf != "" {
		// A Sentinel: its config file, no persistence settings.
		args = []string{s.conf, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--protected-mode", "no"}
	}
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(s.Addr()); err == nil {
			break
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited (%v): %s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("no PONG on %s within 10s: %s", s.Addr(), out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is redis://host:port/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop kills the server (SIGKILL: like a crash, nothing is saved) and waits
// for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Kill)
	<-exited
}

// Pause freezes the server (SIGSTOP): connections stay open and requests
// get no answer, as when Redis hangs or the network stalls. Resume undoes
// it; Stop (SIGKILL) ends a paused server too.
func (s *Server) Pause() {
	s.tb.Helper()
	if !s.signal(syscall.SIGSTOP) {
		s.tb.Fatalf("redistest: pause: server is not running")
	}
}

// Resume lets a paused server run again (SIGCONT); a stopped one stays stopped.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) bool {
	s.tb.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		return false
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: %s: %v", sig, err)
	}
	return true
}

// Restart stops the server if it runs and starts a new one on the same
// port: empty, or with what it had when durable.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = s.start(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: restart on %s: %v", s.Addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping sends PING in the inline protocol and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// lockedWriter keeps the first 64 KiB of the server's output for error messages.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() < 64<<10 {
		w.b.Write(p)
	}
	return len(p), nil
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
