package fnlog

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The ring keeps the last Lines lines, oldest first.
func TestRingKeepsTheLastLines(t *testing.T) {
	s := New(Options{NodeID: "n1", Lines: 3})
	for i := 0; i < 7; i++ {
		s.Add("f", LevelInfo, fmt.Sprint(i))
	}
	got := s.Recent("f")
	if len(got) != 3 || got[0].Message != "4" || got[2].Message != "6" || got[0].Node != "n1" {
		t.Fatalf("recent: %+v", got)
	}
	if other := s.Recent("g"); other == nil || len(other) != 0 {
		t.Fatalf("a function without lines: %+v, want an empty list", other)
	}
	s.Add("f", LevelError, strings.Repeat("é", MaxMessageBytes))
	if m := s.Recent("f")[2].Message; len(m) > MaxMessageBytes+3 || !strings.HasSuffix(m, "...") {
		t.Fatalf("long message kept as %d bytes", len(m))
	}
}

// Past lineRate (with its burst), lines are counted, not kept.
func TestRateBoundsAFunctionsLines(t *testing.T) {
	s := New(Options{NodeID: "n1", Lines: 1000})
	for i := 0; i < lineBurst+100; i++ {
		s.Add("f", LevelInfo, "x")
	}
	kept := len(s.Recent("f"))
	if kept < lineBurst || kept > lineBurst+10 || counterValue(s.dropped.WithLabelValues("rate")) < 90 {
		t.Fatalf("%d kept of %d, %g dropped", kept, lineBurst+100, counterValue(s.dropped.WithLabelValues("rate")))
	}
}

// A follower gets the kept lines, then new ones; one that does not read
// misses lines (counted) and holds nothing up.
func TestFollowers(t *testing.T) {
	s := New(Options{NodeID: "n1", Lines: 10})
	s.Add("f", LevelInfo, "old")
	recent, f, stop, ok := s.Follow("f")
	if !ok || len(recent) != 1 || recent[0].Message != "old" {
		t.Fatalf("follow: %v %+v", ok, recent)
	}
	s.Add("f", LevelInfo, "new")
	if l := <-f.C; l.Message != "new" {
		t.Fatalf("followed %+v", l)
	}
	for i := 0; i < followerBuffer+5; i++ {
		s.Receive(mustJSON(t, []relayLine{{Function: "f", Line: Line{Message: "r", Node: "n2", Time: "2026-01-01T00:00:00Z", Level: LevelInfo}}}))
	}
	if got := counterValue(s.dropped.WithLabelValues("slow_follower")); got != 5 {
		t.Fatalf("slow follower drops: %g, want 5", got)
	}
	stop()
	stop()
	for i := 0; i < MaxFollowers; i++ {
		if _, _, _, ok := s.Follow("f"); !ok {
			t.Fatalf("follower %d refused", i)
		}
	}
	if _, _, _, ok := s.Follow("f"); ok {
		t.Fatalf("follower %d accepted past MaxFollowers", MaxFollowers+1)
	}
}

// Relayed lines of other nodes are kept in time order; this node's own,
// which come back through the relay, are not kept twice.
func TestReceiveMergesOtherNodes(t *testing.T) {
	s := New(Options{NodeID: "n1", Lines: 10})
	s.Add("f", LevelInfo, "mine")
	mine := s.Recent("f")[0]
	s.Receive(mustJSON(t, []relayLine{
		{Function: "f", Line: mine},
		{Function: "f", Line: Line{Time: "2000-01-01T00:00:00Z", Level: LevelError, Message: "theirs", Node: "n2"}},
	}))
	got := s.Recent("f")
	if len(got) != 2 || got[0].Message != "theirs" || got[1].Message != "mine" {
		t.Fatalf("merged: %+v", got)
	}
	s.Receive([]byte("not json")) // ignored
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
