package redis

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"
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
		// SCAN walks one server's keys: under Redis Cluster each node is
		// scanned (Nodes is the one server otherwise), and each DEL goes
		// through c, which routes it to the key's slot.
		for addr, node := range c.Nodes() {
			if err := purgeNode(ctx, c, node, pattern); err != nil {
				return fmt.Errorf("purge %s on %s (%s): %w", prefix, s.name, addr, err)
			}
		}
	}
	return nil
}

func purgeNode(ctx context.Context, c, node rueidis.Client, pattern string) error {
	var cursor uint64
	for {
		e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(500).Build()).AsScanEntry()
		if err != nil {
			return err
		}
		// One key per DEL: the keys of different channels may be in
		// different hash slots of a Redis Cluster.
		for _, k := range e.Elements {
			if err := c.Do(ctx, c.B().Del().Key(k).Build()).Error(); err != nil {
				return err
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return nil
		}
	}
}
