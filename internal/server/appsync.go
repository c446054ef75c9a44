package server

import (
	"context"
	"time"
)

// watchAppNotices reloads the apps on every notice (another node changed
// one, or this node's Redis connection came back and may have missed
// notices). Right after a reconnect the store may still fail, so a failed
// reload is retried with backoff; a notice that comes meanwhile starts over.
func (s *Server) watchAppNotices(notices <-chan struct{}) {
	defer s.stopped.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-notices:
		}
		wait := 100 * time.Millisecond
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := s.syncApps(ctx)
			cancel()
			if err == nil {
				break
			}
			if attempt == 7 {
				s.log.Warn("reload apps after a cluster notice", "err", err)
				break
			}
			select {
			case <-s.stop:
				return
			case <-notices:
				wait = 100 * time.Millisecond
			case <-time.After(wait):
				wait = min(2*wait, 2*time.Second)
			}
		}
	}
}
