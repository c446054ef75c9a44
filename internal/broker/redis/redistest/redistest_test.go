package redistest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatal(s.URL())
	}
	s.Stop()
	if ping(s.Addr()) == nil {
		t.Fatal("answers after Stop")
	}
	addr := s.Addr()
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("port changed: %s -> %s", addr, s.Addr())
	}
	if err := ping(s.Addr()); err != nil {
		t.Fatal(err)
	}
}

// fatalTB records Fatalf and stops the goroutine like testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinaryFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f)
	}()
	<-done
	if !strings.Contains(f.msg, "redis-server is not on PATH") {
		t.Fatalf("message %q", f.msg)
	}
}
