package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Subscribers of the Pusher protocol (--protocol pusher): they connect to
// /app/{key}, subscribe with pusher:subscribe and get each message as one
// event whose data is the bench payload in a JSON string. Publishing is the
// same as for Eddy's protocol (the HTTP API), so the two runs measure the
// same fan-out through the two encodings.

// pusherURL turns a node's ws://host/ws into its Pusher endpoint.
func pusherURL(wsURL, key string) string {
	return strings.TrimSuffix(wsURL, "/ws") + "/app/" + key + "?protocol=7&client=eddy-bench&version=1"
}

var (
	pEstablished = []byte(`"event":"pusher:connection_established"`)
	pSucceeded   = []byte(`"event":"pusher_internal:subscription_succeeded"`)
	pError       = []byte(`"event":"pusher:error"`)
	pSubError    = []byte(`"event":"pusher:subscription_error"`)
	pBench       = []byte(`{"event":"b",`)
	pSeq         = []byte(`\"s\":`)
	pTime        = []byte(`\"t\":`)
)

func pusherSubscribeFrame(ch string) []byte {
	b := append([]byte(`{"event":"pusher:subscribe","data":{"channel":`), protocol.AppendString(nil, ch)...)
	return append(b, "}}"...)
}

// connectPusherSub dials a Pusher endpoint and subscribes, returning once
// the subscription succeeded; the caller starts s.loop.
func connectPusherSub(ctx context.Context, d *dialer, url string, ch *channel, readSize int) (*sub, error) {
	c, err := dialWS(ctx, d, url, readSize)
	if err != nil {
		return nil, err
	}
	s := &sub{c: c, ch: ch, done: make(chan struct{}), pusher: true}
	_ = c.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	for s.state < 2 {
		msg, err := c.next()
		if err != nil {
			c.close()
			return nil, err
		}
		if err := s.pusherHello(msg); err != nil {
			c.close()
			return nil, err
		}
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	return s, nil
}

// pusherHello handles one message of a Pusher subscriber that is not live
// yet: it subscribes once the connection is established, and is live
// (state 2) once the subscription succeeded.
func (s *sub) pusherHello(msg []byte) error {
	switch {
	case bytes.Contains(msg, pEstablished):
		if err := s.c.writeText(pusherSubscribeFrame(s.ch.name)); err != nil {
			return err
		}
		s.state = 1
	case bytes.Contains(msg, pSucceeded):
		s.state = 2
	case bytes.Contains(msg, pError), bytes.Contains(msg, pSubError):
		return errors.New("server: " + string(msg))
	}
	return nil
}

// handlePusher processes one WebSocket message of a Pusher subscriber:
// one event. Pusher events carry no offsets, so gaps are not counted.
func (s *sub) handlePusher(msg []byte, now time.Time) {
	if !bytes.HasPrefix(msg, pBench) {
		return
	}
	seq, ok1 := uintAfter(msg, pSeq)
	sent, ok2 := uintAfter(msg, pTime)
	if !ok1 || !ok2 {
		s.foreign++
		return
	}
	if s.h == nil {
		s.h = new(hist)
	}
	var lat uint64
	if nowMicros := uint64(now.UnixMicro()); nowMicros > sent {
		lat = nowMicros - sent
	}
	s.h.add(lat)
	if !s.seen.add(seq) {
		s.dups++
	}
	s.recv.Add(1)
	s.reads.Add(1)
}

// checkProtocol validates Options.Protocol for the scenario.
func (o *Options) checkProtocol() error {
	switch o.Protocol {
	case "", "eddy":
		return nil
	case "pusher":
		if o.Scenario != "fanout" && o.Scenario != "channels" && o.Scenario != "cluster" {
			return fmt.Errorf("--protocol pusher works with fanout, channels and cluster, not %s", o.Scenario)
		}
		if o.PusherKey == "" {
			return fmt.Errorf("--protocol pusher needs the app key: pass --pusher-key, or run where eddy.yaml has pusher_key")
		}
		return nil
	}
	return fmt.Errorf("--protocol must be eddy or pusher, not %q", o.Protocol)
}
