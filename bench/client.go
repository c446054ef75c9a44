package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// channel is one bench channel: its name, the next sequence number and
// how many publishes the server accepted.
type channel struct {
	name string
	seq  atomic.Uint64
	sent atomic.Uint64
}

// sub is one subscriber connection. Its counters are written only by its
// read goroutine; recv and presence are atomics for the progress line.
type sub struct {
	c  *wsConn
	ch *channel

	state    int  // 0 wait ready, 1 wait subscribed, 2 live
	subSent  bool // the subscribe frame went out (with the auth, or on ready)
	base     uint64
	last     uint64
	members  bool // subscribed carried members (presence on)
	recv     atomic.Uint64
	reads    atomic.Uint64 // WebSocket messages that carried bench messages
	presence atomic.Uint64
	errFrame atomic.Uint64
	seen     seqSet
	dups     uint64
	gaps     uint64
	foreign  uint64
	h        *hist
	firstErr string
	err      error
	done     chan struct{}
	pusher   bool // a Pusher protocol subscriber (pusher.go)

	polled bool     // opened and read by a poller (poller_linux.go), not by loop
	dl     *dialing // while a poller opens it
}

// dialing is the state of a connection a poller is opening.
type dialing struct {
	start    time.Time
	deadline time.Time
	req      []byte // the upgrade request, or what is left of it to write
	upgraded bool   // the 101 answer came
	frames   []byte // written on the 101: the auth and subscribe frames (Eddy)
	// done is called once, on the poller's goroutine: live (err nil) after
	// connect, or failed.
	done func(s *sub, connect time.Duration, err error)
}

// dialTimeout bounds opening a connection through a poller, as dialWS's
// and connectSub's 15 s deadlines do.
const dialTimeout = 15 * time.Second

var (
	tMessage    = []byte("message")
	tPresence   = []byte("presence")
	tReady      = []byte("ready")
	tSubscribed = []byte("subscribed")
	tError      = []byte("error")
	tAck        = []byte("ack")
)

func authFrame(token string) []byte {
	b := append([]byte(`{"type":"auth","token":`), protocol.AppendString(nil, token)...)
	return append(b, '}')
}

func subscribeFrame(ch string) []byte {
	b := append([]byte(`{"type":"subscribe","id":1,"channel":`), protocol.AppendString(nil, ch)...)
	return append(b, '}')
}

// connectSub dials, authenticates and subscribes, returning once the
// server confirmed the subscription; the caller starts s.loop.
func connectSub(ctx context.Context, d *dialer, wsURL, token string, ch *channel, readSize int) (*sub, error) {
	c, err := dialWS(ctx, d, wsURL, readSize)
	if err != nil {
		return nil, err
	}
	s := &sub{c: c, ch: ch, done: make(chan struct{})}
	_ = c.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	// auth and subscribe leave in one write: the server handles frames in
	// order, so the subscribe is read after the auth it depends on, and a
	// round trip per connection is saved.
	if err := c.writeTexts(authFrame(token), subscribeFrame(ch.name)); err != nil {
		c.close()
		return nil, err
	}
	s.subSent = true
	for s.state < 2 {
		msg, err := c.next()
		if err != nil {
			c.close()
			if s.firstErr != "" {
				return nil, errors.New(s.firstErr)
			}
			return nil, err
		}
		if err := s.handle(msg, time.Now()); err != nil {
			c.close()
			return nil, err
		}
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	return s, nil
}

func (s *sub) loop() {
	defer close(s.done)
	for {
		msg, err := s.c.next()
		if err != nil {
			s.err = err
			return
		}
		if s.pusher {
			s.handlePusher(msg, time.Now())
			continue
		}
		_ = s.handle(msg, time.Now())
	}
}

// handle processes one WebSocket message: newline-separated frames.
func (s *sub) handle(msg []byte, now time.Time) error {
	nowMicros := uint64(now.UnixMicro())
	var nmsg, npres uint64
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		typ := frameType(line)
		switch {
		case bytes.Equal(typ, tMessage):
			m, ok := scanMessage(line)
			if !ok {
				s.foreign++
				continue
			}
			nmsg++
			if s.h == nil {
				s.h = new(hist)
			}
			var lat uint64
			if nowMicros > m.sentMicros {
				lat = nowMicros - m.sentMicros
			}
			s.h.add(lat)
			if !s.seen.add(m.seq) {
				s.dups++
			}
			if m.offset > s.last+1 {
				s.gaps += m.offset - s.last - 1
			}
			if m.offset > s.last {
				s.last = m.offset
			}
		case bytes.Equal(typ, tPresence):
			npres++
		case bytes.Equal(typ, tReady) && s.state == 0:
			s.state = 1
			if !s.subSent {
				s.subSent = true
				if err := s.c.writeText(subscribeFrame(s.ch.name)); err != nil {
					return err
				}
			}
		case bytes.Equal(typ, tSubscribed) && s.state == 1:
			s.base, _ = uintAfter(line, keyOffset)
			s.last = s.base
			s.members = bytes.Contains(line, []byte(`"members":`))
			s.state = 2
		case bytes.Equal(typ, tError):
			s.errFrame.Add(1)
			if s.firstErr == "" {
				s.firstErr = string(line)
			}
			if s.state < 2 {
				return fmt.Errorf("server: %s", line)
			}
		}
	}
	if nmsg > 0 {
		s.recv.Add(nmsg)
		s.reads.Add(1)
	}
	if npres > 0 {
		s.presence.Add(npres)
	}
	return nil
}

// pubConn publishes over a WebSocket, as a browser would; acks arrive on
// its read goroutine.
type pubConn struct {
	c      *wsConn
	mu     sync.Mutex
	ids    []*channel // request id -> channel
	acked  atomic.Uint64
	failed atomic.Uint64
	wrote  atomic.Uint64
	first  atomic.Pointer[string]
	done   chan struct{}
	buf    []byte
}

func connectPub(ctx context.Context, d *dialer, wsURL, token string) (*pubConn, error) {
	c, err := dialWS(ctx, d, wsURL, 16<<10)
	if err != nil {
		return nil, err
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	if err := c.writeText(authFrame(token)); err != nil {
		c.close()
		return nil, err
	}
	msg, err := c.next()
	if err != nil {
		c.close()
		return nil, err
	}
	if !bytes.Equal(frameType(msg), tReady) {
		c.close()
		return nil, fmt.Errorf("auth refused: %s", msg)
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	p := &pubConn{c: c, done: make(chan struct{}), ids: []*channel{nil}}
	go p.loop()
	return p, nil
}

func (p *pubConn) publish(ch *channel) error {
	seq := ch.seq.Add(1)
	p.mu.Lock()
	id := len(p.ids)
	p.ids = append(p.ids, ch)
	b := append(p.buf[:0], `{"type":"publish","id":`...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, `,"channel":`...)
	b = protocol.AppendString(b, ch.name)
	b = append(b, `,"event":"b","data":`...)
	b = appendPayload(b, seq, uint64(time.Now().UnixMicro()))
	b = append(b, '}')
	p.buf = b
	p.mu.Unlock()
	// Written outside p.mu so acks are not held up; wsConn serialises writes.
	err := p.c.writeText(b)
	if err == nil {
		p.wrote.Add(1)
	}
	return err
}

var keyID = []byte(`"id":`)

func (p *pubConn) loop() {
	defer close(p.done)
	for {
		msg, err := p.c.next()
		if err != nil {
			return
		}
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			typ := frameType(line)
			isAck := bytes.Equal(typ, tAck)
			if !isAck && !bytes.Equal(typ, tError) {
				continue
			}
			id, _ := uintAfter(line, keyID)
			p.mu.Lock()
			var ch *channel
			if id < uint64(len(p.ids)) {
				ch = p.ids[id]
			}
			p.mu.Unlock()
			if isAck {
				p.acked.Add(1)
				if ch != nil {
					ch.sent.Add(1)
				}
			} else {
				p.failed.Add(1)
				s := string(line)
				p.first.CompareAndSwap(nil, &s)
			}
		}
	}
}

func (p *pubConn) outstanding() uint64 {
	return p.wrote.Load() - p.acked.Load() - p.failed.Load()
}
