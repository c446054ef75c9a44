package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// plainWS is a minimal WebSocket client over one TCP connection, without a
// goroutine of its own, so a test can hold thousands.
type plainWS struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialPlain(addr string) (*plainWS, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(servertest.Timeout))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("upgrade: %s", resp.Status)
	}
	return &plainWS{conn: c, r: r}, nil
}

// send writes v as one masked text frame.
func (w *plainWS) send(v any) error {
	p, _ := json.Marshal(v)
	h := []byte{0x81}
	switch {
	case len(p) < 126:
		h = append(h, 0x80|byte(len(p)))
	default:
		h = append(h, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	h = append(h, 0, 0, 0, 0) // a zero mask leaves the payload as it is
	_, err := w.conn.Write(append(h, p...))
	return err
}

// next reads one frame: its opcode and payload.
func (w *plainWS) next() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(w.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(w.r, p)
	return h[0] & 0x0f, p, err
}

// await reads frames until a text frame holding want; frames may be
// batched, one JSON object per line.
func (w *plainWS) await(want string) error {
	for {
		op, p, err := w.next()
		if err != nil {
			return err
		}
		if op == 8 {
			return fmt.Errorf("closed while waiting for %s", want)
		}
		if op == 1 && strings.Contains(string(p), want) {
			return nil
		}
	}
}

// closeCode reads until the close frame and answers it, as a client does.
func (w *plainWS) closeCode() (uint16, error) {
	for {
		op, p, err := w.next()
		if err != nil {
			return 0, err
		}
		if op == 8 {
			_, _ = w.conn.Write([]byte{0x88, 0x80, 0, 0, 0, 0})
			if len(p) < 2 {
				return 0, nil
			}
			return binary.BigEndian.Uint16(p), nil
		}
	}
}

// Shutdown of a node whose Redis hangs: every connection's release (its
// presence member removal) is stuck on Redis, yet Shutdown returns within
// shutdown_timeout (here 20 s, against 10,000 s for one release after the
// other) and every client gets 1012, because each connection
// tears itself down on its own goroutine instead of Shutdown doing it for
// one after the other.
func TestShutdownWithRedisPausedClosesEveryConnection(t *testing.T) {
	const conns = 2000
	rs, nodes := cluster(t, 1, func(c *config.Config) {
		c.Namespaces["room"] = config.ChannelOptions{Presence: true}
		// Far less than one connection after the other would take (2,000
		// releases of releaseTimeout each) and twice the default: under
		// -race beside other packages' tests, 2,000 teardowns that each
		// wait releaseTimeout on the paused Redis took more than the
		// default 10 s in one CI run.
		c.ShutdownTimeout = 2 * config.Default().ShutdownTimeout
		c.PingInterval = time.Hour
	})
	n := nodes[0]
	addr := n.Addr().String()
	token := servertest.Token(t, "u", nil, nil)
	clients := make([]*plainWS, conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= conns {
					return
				}
				w, err := dialPlain(addr)
				if err == nil {
					err = w.send(map[string]any{"type": "auth", "token": token})
				}
				if err == nil {
					err = w.await(`"ready"`)
				}
				if err == nil {
					err = w.send(map[string]any{"type": "subscribe", "id": 1, "channel": fmt.Sprintf("room:%d", i%50)})
				}
				if err == nil {
					err = w.await(`"subscribed"`)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				clients[i] = w
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, w := range clients {
			w.conn.Close()
		}
	}()

	rs.Pause()
	defer rs.Resume()
	codes := make(chan uint16, conns)
	for _, w := range clients {
		_ = w.conn.SetDeadline(time.Now().Add(2 * n.Config.ShutdownTimeout))
		go func() {
			code, err := w.closeCode()
			if err != nil {
				t.Error(err)
			}
			codes <- code
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.Config.ShutdownTimeout)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with Redis paused: %v", err)
	}
	wrong := 0
	for range conns {
		if code := <-codes; code != 1012 {
			wrong++
		}
	}
	if wrong > 0 {
		t.Fatalf("%d of %d clients did not get 1012", wrong, conns)
	}
}

// A connection closed while one of its publishes runs a slow function
// cancels that run: the function's HTTP endpoint sees its request
// cancelled long before the function's own timeout.
func TestClosingConnectionCancelsItsFunctionRun(t *testing.T) {
	const fnTimeout = 10 * time.Second
	started, cancelled, release := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only once the body is read does the server watch the connection
		// and cancel r's context when the caller goes away.
		_, _ = io.Copy(io.Discard, r.Body)
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-release:
		}
	}))
	defer fn.Close()
	defer close(release)
	s := servertest.StartNode(t, func(c *config.Config) { c.AllowPrivateURLs = true }) // the function server is on loopback
	deploy(t, s, "slow", map[string]any{"runtime": "http", "url": fn.URL, "timeout_ms": fnTimeout.Milliseconds()})
	associate(t, s, "slow:*", "", "slow")
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", []string{"slow:*"}, []string{"slow:*"}))
	ws.Send(map[string]any{"type": "publish", "id": 1, "channel": "slow:1", "event": "e", "data": 1})
	select {
	case <-started:
	case <-time.After(servertest.Timeout):
		t.Fatal("the function was not called")
	}
	go func() { _ = s.Shutdown(context.Background()) }()
	select {
	case <-cancelled:
	case <-time.After(fnTimeout / 2):
		t.Fatal("closing the connection did not cancel its function run")
	}
	if code := ws.CloseCode(); code != 1012 {
		t.Fatalf("close code %d, want 1012", code)
	}
}
