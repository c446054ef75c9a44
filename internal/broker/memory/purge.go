package memory

import (
	"context"
	"strings"
)

// PurgePrefix forgets every channel whose name starts with prefix: its
// counter, kept messages and presence. The server calls it for a deleted
// app, whose channels all carry the app's prefix.
func (b *Broker) PurgePrefix(_ context.Context, prefix string) error {
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		var freed int64
		for ch, st := range s.streams {
			if strings.HasPrefix(ch, prefix) {
				freed += s.dropHistory(st)
				delete(s.streams, ch)
			}
		}
		for ch := range s.presence {
			if strings.HasPrefix(ch, prefix) {
				delete(s.presence, ch)
			}
		}
		b.bytes.Add(-freed)
		s.mu.Unlock()
	}
	return nil
}
