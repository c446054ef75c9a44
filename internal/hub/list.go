package hub

import "strings"

// EachChannel calls f with every channel that has local subscribers and
// whose name starts with prefix, and its number of local subscribers. f
// runs with no lock held.
func (h *Hub) EachChannel(prefix string, f func(channel string, subscribers int)) {
	type entry struct {
		name string
		n    int
	}
	var batch []entry
	for i := range h.shards {
		sh := &h.shards[i]
		batch = batch[:0]
		sh.mu.RLock()
		for name, subs := range sh.channels {
			if strings.HasPrefix(name, prefix) {
				batch = append(batch, entry{name, len(subs.list)})
			}
		}
		sh.mu.RUnlock()
		for _, e := range batch {
			f(e.name, e.n)
		}
	}
}
