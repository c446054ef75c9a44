package outbox

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a real loopback TCP connection, the
// server end wrapped in a Socket; the client end's receive buffer is as
// small as the kernel allows, so the socket fills after a little.
func tcpPair(t *testing.T, timeout time.Duration) (*Socket, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		})
	}}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	sock, ok := NewSocket(server, timeout)
	if !ok {
		t.Fatal("a TCP connection must make a non-blocking socket")
	}
	return sock, client
}

// TestSocketWritesNeverBlockAndKeepOrder: writes to a peer that does not
// read all return at once (a blocking one would hang the test), a backlog
// builds up, and once the peer reads it gets every byte in order, and the
// outbox's callback runs.
func TestSocketWritesNeverBlockAndKeepOrder(t *testing.T) {
	sock, client := tcpPair(t, time.Minute)
	var want bytes.Buffer
	chunk := make([]byte, 64<<10)
	for i := 0; i < 64; i++ { // 4 MiB, far more than the socket buffers hold
		for j := range chunk {
			chunk[j] = byte(i + j)
		}
		want.Write(chunk)
		if n, err := sock.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if sock.Backlog() == 0 {
		t.Fatal("4 MiB to a peer that does not read left no backlog")
	}
	written := make(chan struct{})
	if !sock.WhenWritten(func() { close(written) }) {
		t.Fatal("WhenWritten with a backlog reported none")
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("bytes arrived out of order or changed")
	}
	<-written
	if sock.Backlog() != 0 || sock.WhenWritten(func() { t.Error("called without a backlog") }) {
		t.Fatal("backlog left after everything was read")
	}
	// Writes go straight to the socket again.
	if _, err := sock.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, got[:5]); err != nil || string(got[:5]) != "after" {
		t.Fatalf("read %q, %v", got[:5], err)
	}
}

// TestSocketCloseDeliversTheBacklogFirst: Close with a backlog closes once
// it is written, so what was queued last (a WebSocket close frame) still
// arrives.
func TestSocketCloseDeliversTheBacklogFirst(t *testing.T) {
	sock, client := tcpPair(t, time.Minute)
	big := bytes.Repeat([]byte("x"), 4<<20)
	_, _ = sock.Write(big)
	_, _ = sock.Write([]byte("close"))
	if err := sock.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sock.Write([]byte("late")); err == nil {
		t.Fatal("write after Close accepted")
	}
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(big)+5 || string(got[len(big):]) != "close" {
		t.Fatalf("read %d bytes ending %q", len(got), got[max(0, len(got)-5):])
	}
}

// TestSocketPeerThatNeverReadsFails: a backlog the peer does not read
// within the timeout ends the socket: the callback runs, the connection is
// closed, and later writes fail.
func TestSocketPeerThatNeverReadsFails(t *testing.T) {
	sock, client := tcpPair(t, 50*time.Millisecond)
	_, _ = sock.Write(bytes.Repeat([]byte("x"), 4<<20))
	failed := make(chan struct{})
	if !sock.WhenWritten(func() { close(failed) }) {
		t.Fatal("no backlog")
	}
	<-failed
	if _, err := sock.Write([]byte("more")); err == nil {
		t.Fatal("write after the timeout accepted")
	}
	_ = client.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, client); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read: %v", err)
	}
}

// rawWriter writes frames, newline-joined, straight to a Socket.
type rawWriter struct{ *Socket }

func (w rawWriter) WriteFrames(f [][]byte) error {
	_, err := w.Write(append(bytes.Join(f, []byte{'\n'}), '\n'))
	return err
}
func (w rawWriter) WritePing() error { return nil }

// TestNonReaderHoldsNoSharedWriter: through a pool of one writer whose
// watchdog never fires, an outbox over a socket whose peer does not read
// takes the writer only for non-blocking writes: another outbox's frames
// still leave, the stuck one's queue (backlog included) overflows at its
// limit, and only it is closed.
func TestNonReaderHoldsNoSharedWriter(t *testing.T) {
	pool := NewPool(1, time.Hour)
	sock, _ := tcpPair(t, time.Minute)
	overflowed := make(chan struct{})
	stuck := New(rawWriter{sock}, Options{MaxQueueBytes: 8 << 20, Writers: pool, OnOverflow: func() { close(overflowed) }})
	healthy := &signalWriter{wrote: make(chan string, 1000)}
	other := New(healthy, Options{MaxQueueBytes: 1 << 20, Writers: pool})

	frame := bytes.Repeat([]byte("x"), 64<<10)
	var err error
	for i := 0; err == nil; i++ {
		if err = stuck.Enqueue(frame); err != nil {
			break
		}
		if i%16 == 0 {
			if err := other.Enqueue([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			expectWrite(t, healthy, "ok")
		}
		if i > 10000 {
			t.Fatal("640 MiB queued to a peer that does not read and no overflow")
		}
	}
	if !errors.Is(err, ErrOverflow) {
		t.Fatalf("enqueue to the stuck outbox: %v", err)
	}
	<-overflowed
	if sock.Backlog() == 0 {
		t.Fatal("the overflowed socket holds no backlog")
	}
	if err := other.Enqueue([]byte("ok")); err != nil {
		t.Fatalf("healthy outbox after the other overflowed: %v", err)
	}
	expectWrite(t, healthy, "ok")
}

func expectWrite(t *testing.T, w *signalWriter, want string) {
	t.Helper()
	select {
	case f := <-w.wrote:
		if f != want {
			t.Fatalf("wrote %q, want %q", f, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the shared writer is held by a socket whose peer does not read")
	}
}

// TestBacklogStopsALongWrite: once the socket holds a backlog, the rest of
// a long queue stays in the outbox (where frames are shared, not copied)
// instead of being copied into the socket's remainder, and still arrives
// complete and in order once the peer reads.
func TestBacklogStopsALongWrite(t *testing.T) {
	sock, client := tcpPair(t, time.Minute)
	gate := make(chan struct{})
	o := New(&gatedWriter{rawWriter{sock}, gate}, Options{MaxQueueBytes: 64 << 20, MaxBatchBytes: 64 << 10})
	frame := bytes.Repeat([]byte("y"), 16<<10)
	const n = 512 // 8 MiB
	var want bytes.Buffer
	for i := range n {
		f := append([]byte(strconv.Itoa(i)+":"), frame...)
		want.Write(f)
		want.WriteByte('\n')
		if err := o.Enqueue(f); err != nil {
			t.Fatal(err)
		}
	}
	close(gate) // the first frame's write was held: the rest is one long batch
	deadline := time.Now().Add(10 * time.Second)
	for sock.Backlog() == 0 || o.Queued() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("backlog %d, queued %d", sock.Backlog(), o.Queued())
		}
		time.Sleep(time.Millisecond)
	}
	if b := sock.Backlog(); b > 2*(64<<10) {
		t.Fatalf("the socket holds %d bytes: more than a batch was copied into it", b)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("frames arrived out of order or changed")
	}
}

// gatedWriter holds its first write until gate is closed.
type gatedWriter struct {
	rawWriter
	gate chan struct{}
}

func (w *gatedWriter) WriteFrames(f [][]byte) error {
	<-w.gate
	return w.rawWriter.WriteFrames(f)
}
