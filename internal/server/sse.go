package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/eddyrt/eddy/internal/protocol"
)

// The SSE transport, for networks that block WebSockets: GET /sse opens an
// event stream that carries the server's frames, POST /sse/{session} carries
// the client's. Above the outbox writer and runFrame a connection does not
// know which transport it has, so frames, auth, recovery and limits are the
// WebSocket's (docs/protocol.md, "SSE transport").

// mountSSE puts the SSE transport's two routes on the client mux.
func (s *Server) mountSSE(mux *http.ServeMux) {
	mux.HandleFunc("GET /sse", s.handleSSE)
	mux.HandleFunc("POST /sse/{session}", s.handleSSEPost)
}

// errSSEEnded is a write to a stream whose request is over.
var errSSEEnded = errors.New("sse stream ended")

// sseStream is a connection's event stream: its outbox.Writer, and how the
// connection closes. Writes are serialised by mu, because the close event
// and the outbox's writes come from different goroutines, and stop once
// the handler is returning (ended): a ResponseWriter is not to be used after.
type sseStream struct {
	mu       sync.Mutex
	w        http.ResponseWriter
	rc       *http.ResponseController
	buf      []byte
	deadline int64 // unix nanoseconds of the write deadline last set
	ended    bool
	aborted  bool
	filter   socketWriter // only its onlyText: the same UTF-8 guard as WebSocket writes

	done     chan struct{} // closed to end the stream
	doneOnce sync.Once

	// posting makes one session's POSTs run one after another, in the
	// order they arrive, as a WebSocket's messages do.
	posting sync.Mutex
}

// newSessionID is an SSE session's id: 128 random bits, the only thing
// that lets a POST speak for the stream, so it must not be guessable.
func newSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	if status, msg := s.refuseWebSocket(r); status != 0 {
		http.Error(w, msg, status)
		return
	}
	id, err := newSessionID()
	if err != nil {
		s.log.Error("sse", "err", err)
		writeAPIError(w, http.StatusInternalServerError, protocol.CodeInternal, protocol.ErrInternal.Message)
		return
	}
	ip, ok := s.admit(w, r)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	// The HTTP server's read timeout is for requests: a stream lives as
	// long as its client keeps posting (pingLoop watches it instead).
	_ = rc.SetReadDeadline(time.Time{})
	st := &sseStream{w: w, rc: rc, done: make(chan struct{})}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	s.allowCORS(w, r)
	w.WriteHeader(http.StatusOK)
	c := s.allocConn()
	c.sse, c.ip = st, ip
	c.origin = r.Header.Get("Origin")
	st.filter.onInvalid = func(frame []byte) { s.frameDropped(c.id, frame) }
	s.startConn(c, st)
	// Known before the client learns its id, so its first POST finds it.
	// Nothing is sent before the session event but, perhaps, a ping
	// comment, which is no event.
	s.sseConns.Store(id, c)
	hello, _ := json.Marshal(map[string]any{"type": "session", "session": id})
	// A failed write is a client gone: its request's context ends the loop.
	_ = st.write(sseEvent(nil, [][]byte{hello}))
	stopping := s.stop
	for ended := false; !ended; {
		select {
		case <-st.done:
			ended = true
		case <-r.Context().Done():
			ended = true
		case <-stopping:
			// Shutdown closes listeners before it closes connections, and
			// net/http waits for this handler: close it now, as Shutdown
			// will every WebSocket.
			stopping = nil
			c.closeWith(protocol.DisconnectShutdown, true)
		}
	}
	st.mu.Lock()
	st.ended = true
	aborted := st.aborted
	st.mu.Unlock()
	s.sseConns.Delete(id)
	c.cleanup()
	if aborted {
		// Cut the TCP connection as a network failure would, rather than
		// end the response cleanly.
		panic(http.ErrAbortHandler)
	}
}

// handleSSEPost feeds the frames of a POST body, one per line, to the
// session's connection, exactly as WebSocket messages are. Replies travel
// on the stream; the POST itself answers 204.
func (s *Server) handleSSEPost(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r.Header.Get("Origin")) {
		s.metrics.errorsFor(protocol.CodeForbidden).Inc()
		writeAPIError(w, http.StatusForbidden, protocol.CodeForbidden, "origin not allowed: "+r.Header.Get("Origin"))
		return
	}
	s.allowCORS(w, r)
	v, ok := s.sseConns.Load(r.PathValue("session"))
	if !ok {
		writeAPIError(w, http.StatusNotFound, protocol.CodeNotFound, "no open SSE session with this id; open GET /sse again")
		return
	}
	c := v.(*conn)
	c.sse.posting.Lock()
	defer c.sse.posting.Unlock()
	br := bufio.NewReaderSize(r.Body, 4096)
	for {
		// A frame a little over max_message_bytes is kept whole, so its
		// too_large error can carry its id, as on WebSocket (whose reader
		// takes up to the same bound).
		line, err := readFrameLine(br, 2*s.cfg.MaxMessageBytes+4096)
		if len(line) > 0 {
			if c.closing() {
				writeAPIError(w, http.StatusGone, protocol.CodeNotFound, "the SSE session is closing")
				return
			}
			c.touch()
			if !utf8.Valid(line) {
				c.closeWith(protocol.DisconnectInvalidText, false)
				writeAPIError(w, http.StatusBadRequest, protocol.CodeBadRequest, "frame is not valid UTF-8")
				return
			}
			c.runFrame(line)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, protocol.CodeBadRequest, "reading the body: "+err.Error())
			return
		}
	}
	c.touch() // an empty POST is a liveness signal too
	w.WriteHeader(http.StatusNoContent)
}

// readFrameLine reads one line of br without its line ending, keeping at
// most max bytes of it: a longer line is refused by its length
// (max_message_bytes) without the server holding more of it.
func readFrameLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if room := max - len(line); room > 0 {
			line = append(line, chunk[:min(len(chunk), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, err
	}
}

// allowCORS lets a page from an allowed origin (originAllowed checked)
// read the stream and the POST answers.
func (s *Server) allowCORS(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Add("Vary", "Origin")
	}
}

// sseEvent appends one event to b: each frame its own data line, so the
// event's data is the frames joined by newlines, exactly a WebSocket
// message's batch. A JSON object has no raw newline, but a "frame" may be
// several joined already (presence windows, protocol.JoinBatch): each of
// its lines gets its own data line, or the stream would break.
func sseEvent(b []byte, frames [][]byte) []byte {
	for _, f := range frames {
		for len(f) > 0 {
			line := f
			if i := bytes.IndexByte(f, '\n'); i >= 0 {
				line, f = f[:i], f[i+1:]
			} else {
				f = nil
			}
			if len(line) == 0 {
				continue
			}
			b = append(b, "data: "...)
			b = append(b, line...)
			b = append(b, '\n')
		}
	}
	return append(b, '\n')
}

// write writes b and flushes it, unless the stream is over.
func (st *sseStream) write(b []byte) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return errSSEEnded
	}
	// As socketWriter.armDeadline: a peer that stops reading is cut
	// after writeTimeout; set at most once a second.
	if now := time.Now(); st.deadline-now.UnixNano() <= int64(writeTimeout-time.Second) {
		d := now.Add(writeTimeout)
		st.deadline = d.UnixNano()
		_ = st.rc.SetWriteDeadline(d)
	}
	if _, err := st.w.Write(b); err != nil {
		return err
	}
	return st.rc.Flush()
}

// WriteFrames writes a batch as one event (the outbox's Writer).
func (st *sseStream) WriteFrames(frames [][]byte) error {
	if frames = st.filter.onlyText(frames); len(frames) == 0 {
		return nil
	}
	b := sseEvent(st.buf[:0], frames)
	err := st.write(b)
	if cap(b) <= 64<<10 {
		st.buf = b[:0]
	} else {
		st.buf = nil
	}
	return err
}

// WritePing writes a comment line: it keeps proxies from closing an idle
// stream, and the client answers it with a ping frame (its liveness).
func (st *sseStream) WritePing() error { return st.write([]byte(": ping\n\n")) }

// writeClose sends d as the stream's last event (nil: none) and ends it.
func (st *sseStream) writeClose(d *protocol.Disconnect) {
	if d != nil {
		b, _ := json.Marshal(struct {
			Type   string `json:"type"`
			Code   uint16 `json:"code"`
			Reason string `json:"reason"`
		}{"close", d.Code, d.Reason})
		_ = st.write(sseEvent(nil, [][]byte{b}))
	}
	st.end()
}

// abort ends the stream by cutting its TCP connection.
func (st *sseStream) abort() {
	st.mu.Lock()
	st.aborted = true
	st.mu.Unlock()
	st.end()
}

func (st *sseStream) end() { st.doneOnce.Do(func() { close(st.done) }) }
