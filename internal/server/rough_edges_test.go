package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// A token that expired a moment ago is still inside the verifier's clock-skew
// leeway; it must be refused at auth (unauthorized, 4001) as protocol.md
// says, not accepted with ready and then closed with 4003.
func TestTokenExpiredWithinLeewayRefusedAtAuth(t *testing.T) {
	s := servertest.Start(t)
	tok, err := auth.Mint([]byte(servertest.Secret), auth.TokenSpec{Subject: "late", TTL: -2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ws := servertest.Dial(t, s.WSURL)
	ws.Send(`{"type":"auth","token":"` + tok + `"}`)
	f := ws.ExpectError("unauthorized")
	if msg := f.Str("message"); msg == "" {
		t.Fatalf("error without a message: %v", f)
	}
	if code := ws.CloseCode(); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
}

// The history answer says whether the channel keeps history at all, so a
// caller (and eddy history) can tell "history is off" from "no messages".
func TestHistorySaysWhetherHistoryIsKept(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) {
		c.Namespaces["kept"] = config.ChannelOptions{HistorySize: 10, HistoryTTL: time.Minute}
	})
	ctx := context.Background()
	off, err := s.API().History(ctx, "nokeep:x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if off.HistorySize != 0 {
		t.Fatalf("history_size %d for a namespace without history", off.HistorySize)
	}
	on, err := s.API().History(ctx, "kept:x", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if on.HistorySize != 10 || on.HistoryTTLMS != 60000 {
		t.Fatalf("history_size %d ttl %d ms, want 10 and 60000", on.HistorySize, on.HistoryTTLMS)
	}
}

// A frame refused for its size answers the request: the error carries the
// request's id, so the client's pending call fails at once, not at its timeout.
func TestTooLargeErrorCarriesTheRequestID(t *testing.T) {
	s := servertest.Start(t)
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "big", nil, []string{"*"}))
	big := strings.Repeat("x", s.Config.MaxMessageBytes+10)
	ws.Send(`{"type":"publish","id":77,"channel":"chat:a","event":"e","data":"` + big + `"}`)
	f := ws.ExpectError("too_large")
	if f.Num("id") != 77 {
		t.Fatalf("too_large error %v lacks the request id 77", f)
	}
}

// A publish to several channels answers one id (the publish's, shared by
// every channel's copy) and the offset the message took in each channel.
func TestPublishAnswersTheOffsetPerChannel(t *testing.T) {
	s := servertest.Start(t)
	ctx := context.Background()
	if _, err := s.API().Publish(ctx, "a:1", "e", 1); err != nil {
		t.Fatal(err)
	}
	var out api.PublishResponse
	if err := s.API().Do(ctx, "POST", "/api/v1/publish", api.PublishRequest{Channels: []string{"a:1", "b:1"}, Event: "e", Data: []byte("2")}, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID == "" || out.Offsets["a:1"] != 2 || out.Offsets["b:1"] != 1 || len(out.Offsets) != 2 {
		t.Fatalf("publish answered %+v, want an id and offsets a:1=2 b:1=1", out)
	}
}
