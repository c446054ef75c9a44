package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/protocol"
)

// The accept path. Through net/http, every new WebSocket costs a server
// connection object, a 4 KiB read buffer, a 4 KiB write buffer, a context,
// routing, a response and, at the hijack, another 4 KiB write buffer, all
// garbage a moment later. frontListener sits under each listener's
// http.Server: it reads the first request of each connection itself,
// upgrades GET /ws there with a pooled buffer (on the client listener),
// serves keep-alive publishes itself (apiconn.go), and hands every other
// connection, bytes read included, on to net/http.

// handshakeTimeout bounds the time a new connection has to send its request
// line and headers (net/http's ReadHeaderTimeout for the same listener).
const handshakeTimeout = 10 * time.Second

// handshakeBufferSize holds a request's headers, cookies included. It is
// only borrowed while reading them.
const handshakeBufferSize = 4096

var handshakeReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, handshakeBufferSize) }}

// frontListener is a listener as net/http sees it: Accept returns the
// connections that are neither a WebSocket nor on the API fast path.
type frontListener struct {
	net.Listener
	s      *Server
	h      http.Handler // what net/http serves, for the API fast path
	exact  map[string]http.Handler
	ws     bool // accept WebSockets (not on a separate API listener)
	toHTTP chan net.Conn

	closeOnce sync.Once
	closed    chan struct{}
	mu        sync.Mutex
	sniffing  map[net.Conn]struct{} // connections still in their handshake
	apiConns  map[net.Conn]bool     // on the API fast path (apiconn.go): true while serving a request
	apiWG     sync.WaitGroup        // one per apiConns entry
	acceptErr error
}

// acceptFast wraps ln, served by h, so WebSocket handshakes (when ws) and
// keep-alive publishes skip net/http.
func (s *Server) acceptFast(ln net.Listener, h http.Handler, ws bool) net.Listener {
	l := &frontListener{Listener: ln, s: s, h: h, exact: exactRoutes(h), ws: ws, toHTTP: make(chan net.Conn), closed: make(chan struct{}),
		sniffing: map[net.Conn]struct{}{}, apiConns: map[net.Conn]bool{}}
	go l.acceptLoop()
	return l
}

func (l *frontListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of descriptors and the like: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.closed:
				}
			}
			l.mu.Lock()
			l.acceptErr = err
			l.mu.Unlock()
			l.Close()
			return
		}
		delay = 0
		if _, ok := c.(*tls.Conn); ok {
			// net/http needs to see the *tls.Conn itself (handshake, ALPN).
			l.handOver(c)
			continue
		}
		if !l.track(c) {
			_ = c.Close()
			return
		}
		go l.sniff(c)
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Accept returns the next connection for net/http.
func (l *frontListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.toHTTP:
		return c, nil
	case <-l.closed:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.acceptErr != nil {
			return nil, l.acceptErr
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting and drops connections still in their handshake.
func (l *frontListener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
		l.mu.Lock()
		for c := range l.sniffing {
			_ = c.Close()
		}
		l.sniffing = nil
		for c, busy := range l.apiConns {
			if !busy {
				_ = c.Close() // idle: its reader returns; a busy one closes after its answer
			}
		}
		l.mu.Unlock()
	})
	return err
}

func (l *frontListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sniffing == nil {
		return false
	}
	l.sniffing[c] = struct{}{}
	return true
}

func (l *frontListener) untrack(c net.Conn) {
	l.mu.Lock()
	if l.sniffing != nil {
		delete(l.sniffing, c)
	}
	l.mu.Unlock()
}

// trackAPI moves c from the handshakes to the API fast path, busy.
func (l *frontListener) trackAPI(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sniffing == nil {
		return false
	}
	delete(l.sniffing, c)
	l.apiConns[c] = true
	l.apiWG.Add(1)
	return true
}

// apiIdle marks c as waiting for its next request; false once the
// listener is closed (c should close).
func (l *frontListener) apiIdle(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sniffing == nil {
		return false
	}
	l.apiConns[c] = false
	return true
}

// apiBusy marks c as serving a request.
func (l *frontListener) apiBusy(c net.Conn) {
	l.mu.Lock()
	if _, ok := l.apiConns[c]; ok {
		l.apiConns[c] = true
	}
	l.mu.Unlock()
}

// apiDone takes c off the fast path (closed or handed to net/http).
func (l *frontListener) apiDone(c net.Conn) {
	l.mu.Lock()
	_, ok := l.apiConns[c]
	delete(l.apiConns, c)
	l.mu.Unlock()
	if ok {
		l.apiWG.Done()
	}
}

// isClosed: the listener no longer accepts.
func (l *frontListener) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// waitAPI waits for the fast path's connections to finish their requests
// and close, after Close.
func (l *frontListener) waitAPI(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		l.apiWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *frontListener) handOver(c net.Conn) {
	select {
	case l.toHTTP <- c:
	case <-l.closed:
		_ = c.Close()
	}
}

// sniff reads the start of c's first request: a WebSocket handshake is
// served here, anything else goes to net/http.
func (l *frontListener) sniff(c net.Conn) {
	defer l.untrack(c)
	hr := &handshakeReader{Conn: c, left: http.DefaultMaxHeaderBytes + 4096}
	br := handshakeReaders.Get().(*bufio.Reader)
	br.Reset(hr)
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	head, err := br.Peek(len("GET /ws?"))
	if err != nil && len(head) == 0 {
		releaseReader(br)
		_ = c.Close()
		return
	}
	if isAPIStart(head) && l.trackAPI(c) {
		hr.left = -1 // the fast path applies its own limits
		l.serveAPI(c, br)
		return
	}
	if !l.ws || !isWSRequestLine(head) {
		// Not ours: net/http reads what was buffered, then the socket. It
		// keeps the borrowed buffer; the pool makes another when needed.
		_ = c.SetReadDeadline(time.Time{})
		hr.left = -1 // net/http applies its own MaxHeaderBytes
		l.handOver(&bufferedConn{Conn: c, r: br})
		return
	}
	r, err := http.ReadRequest(br)
	if err != nil {
		if errors.Is(err, errHeadersTooLarge) {
			writeStatus(c, http.StatusRequestHeaderFieldsTooLarge, "request headers too large")
		} else {
			writeStatus(c, http.StatusBadRequest, "malformed request: "+err.Error())
		}
		releaseReader(br)
		_ = c.Close()
		return
	}
	hr.left = -1
	_ = c.SetReadDeadline(time.Time{})
	r.RemoteAddr = c.RemoteAddr().String()
	if status, msg := l.s.refuseWebSocket(r); status != 0 {
		writeStatus(c, status, msg)
		releaseReader(br)
		_ = c.Close()
		return
	}
	ip := peerIP(r)
	if by := l.s.limits.acquire(ip); by != "" {
		status, msg := l.s.limitRefusal(by)
		writeAPIStatus(c, status, protocol.CodeLimitExceeded, msg)
		releaseReader(br)
		_ = c.Close()
		return
	}
	// The connection reads through its own reader from now on (upgrade
	// picks it), unless the client already sent frames that sit in the
	// handshake's buffer.
	if br.Buffered() == 0 {
		releaseReader(br)
		br = nil
	}
	l.s.upgrade(c, br, r, ip)
}

func releaseReader(br *bufio.Reader) {
	br.Reset(nil)
	handshakeReaders.Put(br)
}

// isWSRequestLine tells "GET /ws " and "GET /ws?..." from any other start.
func isWSRequestLine(head []byte) bool {
	return len(head) == len("GET /ws?") && bytes.HasPrefix(head, []byte("GET /ws")) && (head[7] == ' ' || head[7] == '?')
}

// writeStatus answers a refused handshake as http.Error would.
func writeStatus(c net.Conn, status int, msg string) {
	_ = c.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	body := msg + "\n"
	_, _ = io.WriteString(c, "HTTP/1.1 "+strconv.Itoa(status)+" "+http.StatusText(status)+"\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n"+
		"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
}

// writeAPIStatus answers a refused handshake with the API's JSON error, as
// writeAPIError does on the net/http path.
func writeAPIStatus(c net.Conn, status int, code, msg string) {
	_ = c.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	body, _ := json.Marshal(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
	_, _ = io.WriteString(c, "HTTP/1.1 "+strconv.Itoa(status)+" "+http.StatusText(status)+"\r\n"+
		"Content-Type: application/json\r\nConnection: close\r\n"+
		"Content-Length: "+strconv.Itoa(len(body)+1)+"\r\n\r\n"+string(body)+"\n")
}

var errHeadersTooLarge = errors.New("request headers too large")

// handshakeReader bounds what a handshake may read, as net/http's
// MaxHeaderBytes does: bufio would otherwise grow a header line without
// end. left < 0 lifts the bound once the headers are read.
type handshakeReader struct {
	net.Conn
	left int
}

func (r *handshakeReader) Read(p []byte) (int, error) {
	switch {
	case r.left < 0:
		return r.Conn.Read(p)
	case r.left == 0:
		return 0, errHeadersTooLarge
	case len(p) > r.left:
		p = p[:r.left]
	}
	n, err := r.Conn.Read(p)
	r.left -= n
	return n, err
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r == nil {
		return c.Conn.Read(p)
	}
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	// Drained: read the socket directly and let the buffer go.
	releaseReader(c.r)
	c.r = nil
	return c.Conn.Read(p)
}
