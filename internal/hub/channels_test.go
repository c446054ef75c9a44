package hub_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/hub"
	"github.com/eddyrt/eddy/internal/protocol"
)

type nopSub struct{}

func (nopSub) Deliver(*protocol.Message, []byte)          {}
func (nopSub) DeliverPresence([]byte, []hub.PresenceItem) {}

// Channels lists by prefix in name order, the first limit of them, and
// counts every match; each channel's messages are counted as they fan out.
func TestChannelsByPrefixWithALimit(t *testing.T) {
	b := memory.New()
	h := hub.New(b)
	if err := b.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 49; i >= 0; i-- { // out of order on purpose
		if err := h.Subscribe(context.Background(), fmt.Sprintf("room:%02d", i), nopSub{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Subscribe(context.Background(), "other", nopSub{}); err != nil {
		t.Fatal(err)
	}
	h.HandleMessage(&protocol.Message{Channel: "room:07", Event: "e", Data: []byte("1")})
	h.HandleMessage(&protocol.Message{Channel: "room:07", Event: "e", Data: []byte("2")})

	list, total := h.Channels("room:", 10)
	if total != 50 || len(list) != 10 {
		t.Fatalf("got %d of %d, want 10 of 50", len(list), total)
	}
	for i, c := range list {
		if want := fmt.Sprintf("room:%02d", i); c.Name != want || c.Subscribers != 1 {
			t.Fatalf("entry %d: %+v, want %s with 1 subscriber", i, c, want)
		}
	}
	if list[7].Messages != 2 || h.Messages("room:07") != 2 || h.Messages("room:08") != 0 || h.Messages("nowhere") != 0 {
		t.Fatalf("messages: %+v, Messages(room:07)=%d", list[7], h.Messages("room:07"))
	}
	if all, total := h.Channels("", 0); len(all) != 51 || total != 51 || all[50].Name != "room:49" || all[0].Name != "other" {
		t.Fatalf("all: %d of %d, first %s last %s", len(all), total, all[0].Name, all[len(all)-1].Name)
	}
}
