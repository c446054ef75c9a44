package server

import (
	"context"
	"errors"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// clientError is what a client may see of err, which failed op: a
// *protocol.Error is written for clients and passes as it is; anything
// else becomes one of protocol's fixed errors (unavailable for the broker,
// internal for the rest), and its cause goes to the log. Every error bound
// for a client frame or an HTTP body passes through here.
func (s *Server) clientError(op string, err error) *protocol.Error {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, broker.ErrOutcomeUnknown):
		s.log.Warn(op+": broker did not confirm", "err", err)
		return protocol.ErrOutcomeUnknown
	case errors.Is(err, broker.ErrUnavailable):
		s.log.Warn(op+": broker unavailable", "err", err)
		return protocol.ErrUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller went away or gave up (a closed connection, an HTTP
		// client's timeout): nobody may be listening for this answer.
		s.log.Debug(op+": abandoned", "err", err)
		return protocol.ErrUnavailable
	}
	s.log.Error(op, "err", err)
	return protocol.ErrInternal
}
