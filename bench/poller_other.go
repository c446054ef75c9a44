//go:build !linux

package bench

import "errors"

// Elsewhere than Linux each subscriber has its own read goroutine (sub.loop).
type pollers struct{}

func startPollers(n, bufSize int) (*pollers, error) {
	return nil, errors.New("pollers need epoll (Linux)")
}

func (ps *pollers) add(s *sub) error { return errors.New("no pollers") }

func (ps *pollers) stop() {}
