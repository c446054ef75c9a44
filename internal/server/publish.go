package server

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

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
}

const maxEventLen = 255

// publish runs one publish end to end: validate, functions, broker. It
// returns the message id once every channel's broker accepted the message.
func (s *Server) publish(ctx context.Context, req publishRequest) (string, error) {
	start := time.Now()
	if req.event == "" || len(req.event) > maxEventLen || !utf8.ValidString(req.event) {
		return "", protocol.Errorf(protocol.CodeBadRequest, "event must be 1-%d characters of UTF-8", maxEventLen)
	}
	if len(req.channels) == 0 {
		return "", protocol.Errorf(protocol.CodeBadRequest, "no channel given")
	}
	for _, ch := range req.channels {
		if err := protocol.ValidateChannel(ch); err != nil {
			return "", err
		}
	}
	if len(req.data) > s.cfg.MaxMessageBytes {
		return "", protocol.Errorf(protocol.CodeTooLarge, "data is %d bytes; max_message_bytes is %d", len(req.data), s.cfg.MaxMessageBytes)
	}
	data, err := protocol.CompactData(req.data)
	if err != nil {
		return "", err
	}
	id := s.nextID("m-")
	ts := start.UnixMilli()
	for _, ch := range req.channels {
		m := &protocol.Message{Channel: ch, Event: req.event, Data: data, ID: id, TS: ts, User: req.user}
		out := []*protocol.Message{m}
		if s.funcs != nil {
			if out, err = s.funcs.Apply(ctx, m, req.info); err != nil {
				return "", err
			}
		}
		for _, m := range out {
			if m.ID == "" {
				m.ID = s.nextID("m-")
			}
			if m.TS == 0 {
				m.TS = ts
			}
			if _, err := s.broker.Publish(ctx, m, brokerOptions(s.cfg.ChannelOptionsFor(m.Channel))); err != nil {
				return "", fmt.Errorf("publish to %q: %w", m.Channel, err)
			}
		}
	}
	s.metrics.messagesIn.WithLabelValues(req.source).Inc()
	s.metrics.publishLatency.Observe(time.Since(start).Seconds())
	return id, nil
}
