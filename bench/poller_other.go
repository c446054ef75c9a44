//go:build !linux

package bench

import "errors"

// Elsewhere than Linux each subscriber is opened by dialWS and read by a
// goroutine of its own (sub.loop); pollers are never started.
type pollers struct{}

type rawTarget struct{}

var errNoPollers = errors.New("pollers need epoll (Linux)")

func startPollers(n, bufSize int) (*pollers, error) { return nil, errNoPollers }

func parseRawTarget(host, port string) (*rawTarget, bool) { return nil, false }

func (ps *pollers) dial(s *sub, d *dialer, t *rawTarget, dl *dialing) error { return errNoPollers }

func (ps *pollers) stop() {}

func writeNow(fd int, b []byte) error { return errNoPollers }

func closeFD(fd int) error { return errNoPollers }
