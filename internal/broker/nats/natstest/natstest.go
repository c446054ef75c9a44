// Package natstest starts real nats-server processes with JetStream for
// tests, each on a free loopback port with a store directory of its own.
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// EnvBinary names the nats-server binary to run; scripts/test sets it.
// Without it the tests look for nats-server on PATH, then /usr/sbin.
const EnvBinary = "EDDY_NATS_SERVER"

// Binary returns the nats-server to run, failing the test when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvBinary); p != "" {
		return p
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	t.Fatalf("nats-server not found: set %s or install it (scripts/test does: apt nats-server)", EnvBinary)
	return ""
}

// Server is one nats-server process.
type Server struct {
	t     testing.TB
	bin   string
	port  int
	store string
	cmd   *exec.Cmd
	done  chan struct{}
}

// Start runs a nats-server with JetStream and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), port: freePort(t), store: t.TempDir()}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the nats:// address of the server.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Stop stops the server with SIGTERM and waits for it to exit. A stopped
// nats-server flushes its store; one killed with SIGKILL may lose writes
// it had acknowledged but not yet written (nats-server 2.9 acknowledges
// before its filestore flush), which is not what these tests are about.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Restart starts the server again on the same port and store directory
// (Start calls it first); it returns once the server accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	log, err := os.Create(filepath.Join(s.store, "server.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", filepath.Join(s.store, "js"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); _ = log.Close(); close(done) }(s.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(filepath.Join(s.store, "server.log"))
			s.t.Fatalf("nats-server exited: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server not listening on %d after 20s", s.port)
		}
		time.Sleep(20 * time.Millisecond) // polling a port; there is no event to await
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
