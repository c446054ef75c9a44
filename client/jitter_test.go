package client

import (
	"testing"
	"time"
)

// TestFirstReconnectIsJittered (issue 21): clients a draining node closes
// in the same batch must not come back at the same instant, so even the
// first reconnect waits a random delay in [0, MinBackoff], not a fixed one.
func TestFirstReconnectIsJittered(t *testing.T) {
	const base = 250 * time.Millisecond
	distinct := map[time.Duration]bool{}
	low, high := 0, 0
	for range 1000 {
		d := backoff(0, base, 10*time.Second)
		if d < 0 || d > base {
			t.Fatalf("first reconnect delay %s outside [0, %s]", d, base)
		}
		distinct[d] = true
		if d < base/2 {
			low++
		} else {
			high++
		}
	}
	// 1,000 uniform draws: a few hundred in each half, almost all distinct.
	if len(distinct) < 900 || low < 300 || high < 300 {
		t.Fatalf("first reconnect delays not spread: %d distinct of 1000, %d below %s, %d above", len(distinct), low, base/2, high)
	}
}
