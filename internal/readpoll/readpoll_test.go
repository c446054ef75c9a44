//go:build linux

package readpoll

import (
	"net"
	"syscall"
	"testing"
	"time"
)

type chanWaker chan struct{}

func (w chanWaker) Wake() {
	select {
	case w <- struct{}{}:
	default:
	}
}

func tcpPair(t *testing.T) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), client
}

func waitWake(t *testing.T, w chanWaker, what string) {
	t.Helper()
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake for %s", what)
	}
}

// drain reads the socket until EAGAIN, as a reader of an edge-triggered
// registration must before it waits again.
func drain(t *testing.T, rc syscall.RawConn) (got int, eof bool) {
	t.Helper()
	buf := make([]byte, 64)
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, err := syscall.Read(int(fd), buf)
			switch {
			case err == syscall.EAGAIN:
				return true
			case err != nil:
				t.Errorf("read: %v", err)
				return true
			case n == 0:
				eof = true
				return true
			}
			got += n
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, eof
}

func TestWakesOnBytesAndHangUp(t *testing.T) {
	if !Supported() {
		t.Skip("no epoll here")
	}
	server, client := tcpPair(t)
	rc, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	before := Watched()
	w := make(chanWaker, 1)
	tok, err := Watch(rc, w)
	if err != nil {
		t.Fatal(err)
	}
	if Watched() != before+1 {
		t.Fatalf("Watched %d, want %d", Watched(), before+1)
	}
	for i := 0; i < 3; i++ {
		if _, err := client.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		waitWake(t, w, "bytes")
		// The bytes may come in more than one edge; read until all five.
		got := 0
		for got < 5 {
			n, _ := drain(t, rc)
			if got += n; got < 5 {
				waitWake(t, w, "the rest of the bytes")
			}
		}
	}
	client.Close()
	waitWake(t, w, "the hang-up")
	if _, eof := drain(t, rc); !eof {
		t.Fatal("woken for the hang-up, but the socket is not at its end")
	}
	Unwatch(rc, tok)
	Unwatch(rc, tok) // a second one does nothing
	if Watched() != before {
		t.Fatalf("Watched %d after Unwatch, want %d", Watched(), before)
	}
}
