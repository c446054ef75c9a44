package hub

// Observer hears when this node gets its first subscriber of a channel and
// when it loses its last one: what webhooks need to report channels
// occupied and vacated (internal/webhooks). It is called with the
// channel's stripe lock held, so for one channel the calls come in order;
// it must not block.
type Observer interface {
	LocalOccupied(channel string)
	LocalVacated(channel string)
}

// SetObserver sets o; call it before the hub is used (server.New does).
func (h *Hub) SetObserver(o Observer) { h.obs = o }
