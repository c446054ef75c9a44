package server

import (
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/protocol"
)

// maxSubLen is the longest user name (a token's sub claim) accepted, in
// characters. The
// name is copied into every message the user publishes and into presence,
// so it is held to what a name needs.
const maxSubLen = 255

// checkIdentity refuses a verified token whose claims would end up in
// other clients' frames (sub as a message's user and a presence member,
// info as a member's info) in a form no frame may carry: a sub that is too
// long or not printable, an info that is not valid UTF-8, nests too deep
// or holds a non-finite number.
func checkIdentity(id *auth.Identity) error {
	n := 0
	for i, r := range id.User {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return protocol.Errorf(protocol.CodeUnauthorized, "token claim sub: non-printable character %U at byte %d; sub must be at most %d printable characters", r, i, maxSubLen)
		}
		n++
	}
	if n > maxSubLen {
		return protocol.Errorf(protocol.CodeUnauthorized, "token claim sub is %d characters long; the limit is %d", n, maxSubLen)
	}
	if len(id.Info) > 0 {
		if err := protocol.CheckField("info", id.Info); err != nil {
			return protocol.Errorf(protocol.CodeUnauthorized, "token claim %s", protocol.AsError(err).Message)
		}
	}
	return nil
}

// frameDropped counts a frame the writers dropped because it was not valid
// UTF-8, and logs it at most once a second: one bad frame fanned out to
// every subscriber of a channel would otherwise log once per connection.
func (s *Server) frameDropped(conn string, frame []byte) {
	s.metrics.framesDropped.WithLabelValues("invalid_utf8").Inc()
	now := time.Now().UnixNano()
	last := s.dropLogged.Load()
	if now-last < int64(time.Second) || !s.dropLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Error("frame dropped at write: not valid UTF-8 (see eddy_frames_dropped_total)",
		"conn", conn, "bytes", len(frame), "start", string(frame[:min(len(frame), 120)]))
}
