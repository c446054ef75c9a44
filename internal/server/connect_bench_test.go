package server_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/eddyrt/eddy/internal/servertest"
	"github.com/eddyrt/eddy/internal/wsframe"
)

// BenchmarkConnect measures the server's side of a new connection, as
// `eddy bench connections` makes them: TCP connect, WebSocket upgrade, auth
// frame, ready, one subscribe, subscribed. Connections stay open, as in the
// bench. The client writes prebuilt bytes and reads into one buffer, so
// almost every allocation -benchmem counts is the server's (the client's
// dial adds a few). It also reports the process's CPU per connection.
//
//	go test -run '^$' -bench Connect -benchtime 3000x -benchmem ./internal/server/
func BenchmarkConnect(b *testing.B) {
	s := servertest.Start(b)
	addr := s.Addr().String()
	tok := servertest.Token(b, "bench", []string{"bench-*"}, nil)
	upgrade := []byte("GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	authFrame := wsframe.AppendClientFrame(nil, true, wsframe.OpText, []byte(`{"type":"auth","token":"`+tok+`"}`), [4]byte{})
	var (
		conns   []net.Conn
		sub     []byte
		subJSON []byte
		payload []byte
	)
	br := bufio.NewReaderSize(nil, 4096)
	b.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		br.Reset(c)
		if _, err := c.Write(upgrade); err != nil {
			b.Fatal(err)
		}
		line, err := br.ReadSlice('\n')
		if err != nil || !bytes.HasPrefix(line, []byte("HTTP/1.1 101 ")) {
			b.Fatalf("upgrade: %q %v", line, err)
		}
		for len(line) > 2 {
			if line, err = br.ReadSlice('\n'); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := c.Write(authFrame); err != nil {
			b.Fatal(err)
		}
		if payload = readServerFrame(b, br, payload); !bytes.Contains(payload, []byte(`"type":"ready"`)) {
			b.Fatalf("auth: %s", payload)
		}
		// One channel per connection, as the bench does.
		subJSON = append(strconv.AppendInt(append(subJSON[:0], `{"type":"subscribe","id":1,"channel":"bench-`...), int64(i), 10), `"}`...)
		sub = wsframe.AppendClientFrame(sub[:0], true, wsframe.OpText, subJSON, [4]byte{})
		if _, err := c.Write(sub); err != nil {
			b.Fatal(err)
		}
		if payload = readServerFrame(b, br, payload); !bytes.Contains(payload, []byte(`"type":"subscribed"`)) {
			b.Fatalf("subscribe: %s", payload)
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / 1e3
	b.ReportMetric(cpu/float64(b.N), "cpu-us/conn")
}

// readServerFrame reads one unmasked, unfragmented server frame into buf.
func readServerFrame(b *testing.B, br *bufio.Reader, buf []byte) []byte {
	b.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		b.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			b.Fatal(err)
		}
		n = int(l[0])<<8 | int(l[1])
	} else if n == 127 {
		b.Fatal("server frame too long")
	}
	buf = slices.Grow(buf[:0], n)[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		b.Fatal(err)
	}
	return buf
}
