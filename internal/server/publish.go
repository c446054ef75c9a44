package server

import (
	"context"
	"encoding/json"
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
}

// publish runs one publish end to end: validate, functions, broker. It
// returns the message id once every channel's broker accepted the message.
func (s *Server) publish(ctx context.Context, req publishRequest) (string, error) {
	start := time.Now()
	channels, data, err := protocol.CheckPublish(req.channels, req.event, req.data, s.cfg.MaxMessageBytes)
	if err != nil {
		return "", err
	}
	req.channels = channels
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
				return "", unavailable(err)
			}
		}
	}
	s.metrics.messagesIn.WithLabelValues(req.source).Inc()
	s.metrics.publishLatency.Observe(time.Since(start).Seconds())
	return id, nil
}
