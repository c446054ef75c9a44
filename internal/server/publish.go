package server

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// publishRequest is a publish from the API or a client, already authorised.
type publishRequest struct {
	channels []string
	event    string
	data     json.RawMessage
	user     string
	info     json.RawMessage
	source   string // "api" or "client", for metrics
	// offsets, when not nil, gets the offset the message took in each
	// requested channel (a channel a function dropped it from is absent).
	offsets map[string]uint64
	// exclude is a Pusher socket id that must not get the message (socket_id).
	exclude string
	app     *appState // nil: the default app
}

// publish runs one publish end to end: validate, functions, broker. It
// returns the message id once every channel's broker accepted the message.
func (s *Server) publish(ctx context.Context, req publishRequest) (string, error) {
	id, _, err := s.publishAt(ctx, req)
	return id, err
}

// publishAt is publish that also returns the offset the message got in the
// first requested channel: 0 when a function dropped it or sent it
// elsewhere.
func (s *Server) publishAt(ctx context.Context, req publishRequest) (string, uint64, error) {
	start := time.Now()
	// The one pass over data: HTTP bodies are decoded without touching it
	// (publishbody.go), so CheckPublish is where data is checked.
	a := req.app
	if a == nil {
		a = s.apps.def
	}
	if !a.allowPublish() {
		return "", 0, appRateError(a)
	}
	channels, data, err := protocol.CheckPublish(req.channels, req.event, req.data, s.maxMessageBytes(a))
	if err != nil {
		return "", 0, err
	}
	req.channels = channels
	id := s.nextID("m-")
	ts := start.UnixMilli()
	var offset uint64
	for ci, ch := range req.channels {
		m := &protocol.Message{Channel: ch, Event: req.event, Data: data, ID: id, TS: ts, User: req.user, Exclude: req.exclude}
		out := []*protocol.Message{m}
		if a.funcs != nil && (a.funcFilter == nil || a.funcFilter.Touches(ch)) {
			if out, err = a.funcs.Apply(ctx, m, req.info); err != nil {
				return "", 0, err
			}
		}
		for _, m := range out {
			if m.ID == "" {
				m.ID = s.nextID("m-")
			}
			if m.TS == 0 {
				m.TS = ts
			}
			if m.Exclude == "" && m.Channel == ch {
				m.Exclude = req.exclude // a function's copy keeps the sender out too
			}
			pos, err := a.broker.Publish(ctx, m, brokerOptions(s.channelOptions(a, m.Channel)))
			if err != nil {
				return "", 0, fmt.Errorf("publish to %q: %w", m.Channel, err)
			}
			if ci == 0 && offset == 0 && m.Channel == ch {
				offset = pos.Offset
			}
			if req.offsets != nil && m.Channel == ch {
				if _, seen := req.offsets[ch]; !seen {
					req.offsets[ch] = pos.Offset
				}
			}
		}
	}
	a.published.Add(1)
	s.metrics.published(req.source).Inc()
	s.metrics.publishLatency.Observe(time.Since(start).Seconds())
	return id, offset, nil
}
