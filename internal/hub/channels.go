package hub

import (
	"sort"
	"strings"
)

// ChannelStat is one channel with local subscribers, as the admin API and
// the console list it.
type ChannelStat struct {
	Name        string
	Subscribers int
	// Messages counts the messages fanned out on this node since the
	// channel got its first local subscriber; the difference between two
	// looks is its rate.
	Messages uint64
}

// Channels lists the channels with local subscribers whose name starts
// with prefix, sorted by name, the first limit of them (limit <= 0: all),
// and how many matched in all. With a limit it keeps at most limit entries
// while it scans, so a node with a million channels answers without a
// million-entry list. Each shard's lock is held only while it is read.
func (h *Hub) Channels(prefix string, limit int) ([]ChannelStat, int) {
	var out []ChannelStat
	total := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for name, subs := range sh.channels {
			if len(subs.list) == 0 || !strings.HasPrefix(name, prefix) {
				continue
			}
			total++
			at := sort.Search(len(out), func(k int) bool { return out[k].Name > name })
			if limit > 0 && at >= limit {
				continue // after the first limit names
			}
			out = append(out, ChannelStat{})
			copy(out[at+1:], out[at:])
			out[at] = ChannelStat{Name: name, Subscribers: len(subs.list), Messages: subs.messages.Load()}
			if limit > 0 && len(out) > limit {
				out = out[:limit]
			}
		}
		sh.mu.RUnlock()
	}
	return out, total
}

// ChannelMessages returns every local channel's message count, for a
// sampler that turns two looks into rates.
func (h *Hub) ChannelMessages(into map[string]uint64) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for name, subs := range sh.channels {
			if len(subs.list) > 0 {
				into[name] = subs.messages.Load()
			}
		}
		sh.mu.RUnlock()
	}
}

// Messages returns channel's message count on this node (0 without local subscribers).
func (h *Hub) Messages(channel string) uint64 {
	sh := &h.shards[h.index(channel)%shardCount]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if subs := sh.channels[channel]; subs != nil {
		return subs.messages.Load()
	}
	return 0
}
