package redis

import (
	"context"
	"fmt"
)

// PurgePrefix deletes every key of the channels whose name starts with
// prefix (numbering, history, presence), on every shard. The server calls
// it for a deleted app, whose channels all carry the app's prefix. It
// scans with SCAN, so Redis keeps serving others meanwhile.
func (b *Broker) PurgePrefix(ctx context.Context, prefix string) error {
	pattern := b.opts.Prefix + ":*:{" + prefix + "*"
	for _, s := range b.shards {
		c, err := s.client()
		if err != nil {
			return unavailable("purge", err)
		}
		var cursor uint64
		for {
			e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(pattern).Count(500).Build()).AsScanEntry()
			if err != nil {
				return fmt.Errorf("purge %s on %s: %w", prefix, s.name, err)
			}
			if len(e.Elements) > 0 {
				// One key per DEL: the keys of different channels may be in
				// different hash slots of a Redis Cluster.
				for _, k := range e.Elements {
					if err := c.Do(ctx, c.B().Del().Key(k).Build()).Error(); err != nil {
						return fmt.Errorf("purge %s on %s: %w", prefix, s.name, err)
					}
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}
