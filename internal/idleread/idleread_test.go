package idleread

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns both ends of a real loopback TCP connection.
func pair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestReadsWhatWasWrittenInAnyChunking: through a 16-byte bufio.Reader (as
// the WebSocket library reads it), reads of random sizes get exactly the
// bytes written in random pieces, short reads and long ones alike.
func TestReadsWhatWasWrittenInAnyChunking(t *testing.T) {
	server, client := pair(t)
	r, ok := New(server)
	if !ok {
		t.Fatal("a TCP connection has a file descriptor")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 200_000)
	for i := range want {
		want[i] = byte(rng.IntN(256))
	}
	go func() {
		rest := want
		wr := rand.New(rand.NewPCG(3, 4))
		for len(rest) > 0 {
			n := min(len(rest), 1+wr.IntN(3*BufferSize))
			if _, err := client.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	br := bufio.NewReaderSize(r, 16)
	got := make([]byte, 0, len(want))
	for len(got) < len(want) {
		p := make([]byte, min(len(want)-len(got), 1+rng.IntN(2*BufferSize)))
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes read differ from bytes written")
	}
	if r.Buffered() != 0 || br.Buffered() != 0 {
		t.Fatalf("%d + %d bytes buffered after reading everything", r.Buffered(), br.Buffered())
	}
}

// TestHoldsNoBufferWhileWaiting: a reader blocked on a silent peer holds
// no buffer; one that has consumed what arrived gives its buffer back; one
// that still holds unread bytes keeps exactly one.
func TestHoldsNoBufferWhileWaiting(t *testing.T) {
	before := Borrowed()
	const conns = 50
	readers := make([]*Reader, conns)
	clients := make([]net.Conn, conns)
	done := make(chan []byte, conns)
	for i := range conns {
		server, client := pair(t)
		r, _ := New(server)
		readers[i], clients[i] = r, client
		go func() {
			p := make([]byte, 4)
			_, err := io.ReadFull(r, p)
			if err != nil {
				p = nil
			}
			done <- p
		}()
	}
	// All fifty wait on silent peers. Whatever the scheduler has done so
	// far, a waiting reader holds nothing (the check runs many times while
	// they wait: a reader that held a buffer would show).
	for range 100 {
		if n := Borrowed() - before; n != 0 {
			t.Fatalf("%d buffers held by readers waiting on silent peers", n)
		}
		time.Sleep(time.Millisecond)
	}
	for _, c := range clients {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
	}
	for range conns {
		if p := <-done; string(p) != "ping" {
			t.Fatalf("read %q, want ping", p)
		}
	}
	if n := Borrowed() - before; n != 0 {
		t.Fatalf("%d buffers held after every reader consumed what arrived", n)
	}
	// Eight bytes arrive, four are read: the rest keeps one buffer.
	if _, err := clients[0].Write([]byte("abcdefgh")); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4)
	if _, err := io.ReadFull(readers[0], p); err != nil || string(p) != "abcd" {
		t.Fatalf("read %q, %v", p, err)
	}
	// The four bytes may have come in two reads; if the rest is still in
	// the socket, no buffer is held yet.
	if held, buffered := Borrowed()-before, readers[0].Buffered(); (buffered > 0) != (held == 1) || held > 1 {
		t.Fatalf("%d buffers held with %d bytes buffered", held, buffered)
	}
	if _, err := io.ReadFull(readers[0], p); err != nil || string(p) != "efgh" {
		t.Fatalf("read %q, %v", p, err)
	}
	if n := Borrowed() - before; n != 0 {
		t.Fatalf("%d buffers held after the rest was read", n)
	}
}

// TestEndOfStreamAndDeadline: the peer closing gives io.EOF; a passed read
// deadline ends a waiting read with a timeout, as net.Conn.Read does.
func TestEndOfStreamAndDeadline(t *testing.T) {
	server, client := pair(t)
	r, _ := New(server)
	if err := server.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := r.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if err := server.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "last" {
		t.Fatalf("read %q, %v; want last and the end of the stream", got, err)
	}
	if _, err := r.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("read after the end: %v, want io.EOF", err)
	}
}

// TestLongReadsGoStraightIntoTheCallersSlice: a read as long as a buffer
// borrows none.
func TestLongReadsGoStraightIntoTheCallersSlice(t *testing.T) {
	server, client := pair(t)
	r, _ := New(server)
	before := Borrowed()
	msg := bytes.Repeat([]byte("x"), 3*BufferSize)
	go client.Write(msg)
	p := make([]byte, len(msg))
	if _, err := io.ReadFull(r, p); err != nil || !bytes.Equal(p, msg) {
		t.Fatalf("long read: %v", err)
	}
	if r.Buffered() != 0 || Borrowed() != before {
		t.Fatalf("a long read left %d bytes buffered, %d buffers held", r.Buffered(), Borrowed()-before)
	}
}

// BenchmarkIdleReader is a read of a small frame through the Reader and a
// 16-byte bufio.Reader, against a 512-byte bufio.Reader on the connection.
func BenchmarkIdleReader(b *testing.B) {
	frame := []byte(`{"type":"publish","id":7,"channel":"chat:lobby","data":{"text":"hi"}}`)
	for _, c := range []struct {
		name string
		mk   func(net.Conn) io.Reader
	}{
		{"idleread", func(c net.Conn) io.Reader { r, _ := New(c); return bufio.NewReaderSize(r, 16) }},
		{"bufio512", func(c net.Conn) io.Reader { return bufio.NewReaderSize(c, BufferSize) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			server, client := pair(b)
			r := c.mk(server)
			p := make([]byte, len(frame))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Write(frame); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
