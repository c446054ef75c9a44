package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eddyrt/eddy/internal/http1"
)

// The publish routes' keep-alive fast path. Per request, net/http spends a
// response object, a context, a pooled bufio.Writer, textproto's header
// parsing and a background read that costs a goroutine hand-off and one
// more read system call; on a single publish that was about a fifth of the
// server's CPU. A connection whose first request is a POST to the API is
// served here instead, one request after another, through the same
// handler net/http would call. The first request that is not a POST to a
// publish route, or that http1 does not accept as plain HTTP/1.1, is left
// unread and the connection, buffered bytes included, goes to net/http,
// which serves it from then on.

// isFastRoute tells the requests served here: POSTs that publish, whose
// handlers read the body and answer with one small buffered response.
func isFastRoute(method, target []byte) bool {
	if string(method) != http.MethodPost {
		return false
	}
	switch string(target) {
	case "/api/v1/publish", "/api/v1/batch":
		return true
	}
	// Pusher's POST /apps/{id}/events and /apps/{id}/batch_events, signed
	// in the query string.
	path, _, _ := bytes.Cut(target, []byte("?"))
	id, ok := bytes.CutPrefix(path, []byte("/apps/"))
	if !ok {
		return false
	}
	id, rest, _ := bytes.Cut(id, []byte("/"))
	return len(id) > 0 && (string(rest) == "events" || string(rest) == "batch_events")
}

// exactRoutes resolves, once, the handlers mux has for the fast path's
// fixed paths: the mux's matching allocates on every request.
func exactRoutes(h http.Handler) map[string]http.Handler {
	out := map[string]http.Handler{}
	mux, ok := h.(*http.ServeMux)
	if !ok {
		return out
	}
	for _, path := range []string{"/api/v1/publish", "/api/v1/batch"} {
		r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: path}}
		if h, pattern := mux.Handler(r); pattern == path {
			out[path] = h
		}
	}
	return out
}

// isAPIStart tells a first request that may be served here from its
// first bytes.
func isAPIStart(head []byte) bool { return bytes.HasPrefix(head, []byte("POST /")) }

// maxUnreadBody is what is discarded of a body the handler left unread to
// keep the connection; past it, the connection is closed (net/http's rule).
const maxUnreadBody = 256 << 10

// apiConn is one connection served by the fast path.
type apiConn struct {
	l      *frontListener
	c      net.Conn
	br     *bufio.Reader
	remote string
	// tmpl carries the connection's context, cancelled when it ends, into
	// each request (a copy of tmpl).
	tmpl *http.Request
	head http1.Head
	resp []byte // the response written, reused
	// Reused from one request to the next: the fast routes' handlers keep
	// neither their request, its header and body, nor their ResponseWriter
	// past their return (strings from the request are copies of its head).
	req     fastRequest
	reqBody fastBody
	w       fastResponse
	header  http.Header
	values  []string
}

// serveAPI serves c's requests while they are for fast routes. br holds
// what was read of c so far.
func (l *frontListener) serveAPI(c net.Conn, br *bufio.Reader) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ac := &apiConn{l: l, c: c, br: br, remote: c.RemoteAddr().String()}
	ac.tmpl = (&http.Request{}).WithContext(ctx)
	defer l.apiDone(c)
	for first := true; ; first = false {
		if !first {
			if !l.apiIdle(c) {
				ac.close()
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(l.s.cfg.HTTPIdleTimeout))
			_, err := br.Peek(1)
			l.apiBusy(c)
			if err != nil {
				ac.close()
				return
			}
		}
		switch ac.serveOne() {
		case nextRequest:
		case handOver:
			// The request is still in br: net/http reads it from there.
			l.apiDone(c)
			_ = c.SetReadDeadline(time.Time{})
			l.handOver(&bufferedConn{Conn: c, r: br})
			return
		case closeConn:
			ac.close()
			return
		}
	}
}

type outcome int

const (
	nextRequest outcome = iota
	handOver
	closeConn
)

func (ac *apiConn) close() {
	releaseReader(ac.br)
	_ = ac.c.Close()
}

// serveOne reads one request head and, if it is for a fast route, serves
// the request.
func (ac *apiConn) serveOne() outcome {
	arrived := time.Now()
	deadline := false
	h := &ac.head
	for {
		buf, _ := ac.br.Peek(ac.br.Buffered())
		switch http1.Parse(buf, h) {
		case http1.Complete:
		case http1.Incomplete:
			if ac.br.Buffered() == ac.br.Size() {
				return handOver // a head too large for us: net/http's limits apply
			}
			if !deadline {
				_ = ac.c.SetReadDeadline(arrived.Add(min(handshakeTimeout, ac.l.s.cfg.HTTPReadTimeout)))
				deadline = true
			}
			if _, err := ac.br.Peek(ac.br.Buffered() + 1); err != nil {
				return closeConn
			}
			continue
		default:
			return handOver
		}
		break
	}
	if !isFastRoute(h.Method, h.Target) {
		return handOver
	}
	r, body, err := ac.request(h)
	if err != nil {
		return handOver
	}
	if _, err := ac.br.Discard(h.Len); err != nil {
		return closeConn
	}
	if int64(ac.br.Buffered()) < body.left {
		_ = ac.c.SetReadDeadline(arrived.Add(ac.l.s.cfg.HTTPReadTimeout))
	}
	w := &ac.w
	w.reset()
	if !ac.call(w, r) {
		return closeConn
	}
	ac.l.s.fastRequests.Add(1)
	keep := !h.Close && !ac.l.s.draining.Load() && !ac.l.isClosed()
	if body.left > 0 {
		if body.left > maxUnreadBody || body.err != nil {
			keep = false
		} else if _, err := ac.br.Discard(int(body.left)); err != nil {
			keep = false
		}
	}
	ac.resp = w.appendResponse(ac.resp[:0], keep)
	if _, err := ac.c.Write(ac.resp); err != nil || !keep {
		return closeConn
	}
	if cap(ac.resp) > 64<<10 {
		ac.resp, w.out = nil, nil // a large batch answer: do not keep its buffers
	}
	return nextRequest
}

// call runs the handler; false if it panicked.
func (ac *apiConn) call(w *fastResponse, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				ac.l.s.log.Error("http: panic serving "+ac.remote, "panic", fmt.Sprint(v), "stack", string(buf))
			}
			ok = false
		}
	}()
	if h, ok := ac.l.exact[r.URL.Path]; ok && r.URL.RawQuery == "" {
		h.ServeHTTP(w, r) // what the mux would pick, without its matching
	} else {
		ac.l.h.ServeHTTP(w, r)
	}
	return true
}

// request builds the http.Request for head h. Header names and values are
// substrings of one copy of the head.
func (ac *apiConn) request(h *http1.Head) (*http.Request, *fastBody, error) {
	buf, _ := ac.br.Peek(h.Len)
	head := string(buf)
	at := func(b []byte) string { // b is a slice of buf
		off := cap(buf) - cap(b)
		return head[off : off+len(b)]
	}
	fr := &ac.req
	fr.r = *ac.tmpl
	fr.u = url.URL{}
	r := &fr.r
	r.Method = http.MethodPost
	target := at(h.Target)
	if _, exact := ac.l.exact[target]; exact {
		fr.u.Path = target // what url.ParseRequestURI makes of a plain path
	} else {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return nil, nil, err
		}
		fr.u = *u
	}
	r.URL = &fr.u
	r.RequestURI = target
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.RemoteAddr = ac.remote
	// The header map and its values are the connection's, reused: the
	// strings in them are not (they are of this request's head).
	if ac.header == nil {
		ac.header = make(http.Header, 8)
	}
	clear(ac.header)
	r.Header = ac.header
	values := ac.values[:0]
	for i := range h.NFields {
		f := &h.Fields[i]
		name := textproto.CanonicalMIMEHeaderKey(at(f.Name))
		values = append(values, at(f.Value))
		if name == "Host" {
			r.Host = values[i]
			continue // net/http moves Host out of the header map too
		}
		if vs, dup := r.Header[name]; dup {
			r.Header[name] = append(vs, values[i])
		} else {
			r.Header[name] = values[i : i+1 : i+1]
		}
	}
	ac.values = values
	body := &ac.reqBody
	*body = fastBody{br: ac.br, left: max(h.ContentLength, 0)}
	r.ContentLength = body.left
	r.Body = body
	if body.left == 0 {
		r.Body = http.NoBody
	}
	r.Close = h.Close
	return r, body, nil
}

// fastRequest is a request with its URL.
type fastRequest struct {
	r http.Request
	u url.URL
}

// fastBody reads a request's Content-Length bytes.
type fastBody struct {
	br   *bufio.Reader
	left int64
	err  error
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
	}
	return n, err
}

func (b *fastBody) Close() error { return nil }

// fastResponse buffers a handler's answer and writes it as one response.
type fastResponse struct {
	header http.Header
	status int
	out    []byte // the body
}

func (w *fastResponse) reset() {
	if w.header == nil {
		w.header = make(http.Header, 2)
	}
	clear(w.header)
	w.status = 0
	w.out = w.out[:0]
}

func (w *fastResponse) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header, 2)
	}
	return w.header
}

func (w *fastResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *fastResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.out = append(w.out, p...)
	return len(p), nil
}

// appendResponse appends the whole response to dst: status line, fields,
// body.
func (w *fastResponse) appendResponse(dst []byte, keep bool) []byte {
	w.WriteHeader(http.StatusOK)
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(w.status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(w.status)...)
	dst = append(dst, "\r\n"...)
	// In sorted order, as net/http writes them.
	var keys []string
	for k := range w.header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection", "Date":
			continue // ours to set
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	typed := false
	for _, k := range keys {
		typed = typed || k == "Content-Type"
		for _, v := range w.header[k] {
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			dst = append(dst, headerValueReplacer.Replace(v)...)
			dst = append(dst, "\r\n"...)
		}
	}
	if !typed && len(w.out) > 0 {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, http.DetectContentType(w.out)...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Date: "...)
	dst = append(dst, httpDate()...)
	dst = append(dst, "\r\n"...)
	// 204 and 304 carry no body, and say nothing of its length.
	bodied := w.status != http.StatusNoContent && w.status != http.StatusNotModified
	if bodied {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(w.out)), 10)
		dst = append(dst, "\r\n"...)
	}
	if !keep {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	if !bodied {
		return dst
	}
	return append(dst, w.out...)
}

// headerValueReplacer keeps a field value on its line, as net/http's
// Header.Write does.
var headerValueReplacer = strings.NewReplacer("\r", " ", "\n", " ")

// httpDate is the Date field's value, formatted once a second.
func httpDate() string {
	now := time.Now().Unix()
	if d := cachedDate.Load(); d != nil && d.unix == now {
		return d.text
	}
	d := &dateText{unix: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

type dateText struct {
	unix int64
	text string
}

var cachedDate atomic.Pointer[dateText]
