package redis

import (
	"strconv"
	"testing"
)

// Growing from n to n+1 shards moves about 1/(n+1) of the channels, all to
// the new shard.
func TestJumpHashMovesLittle(t *testing.T) {
	const keys = 20000
	for n := 1; n < 8; n++ {
		moved := 0
		for i := range keys {
			h := fnv64a("channel:" + strconv.Itoa(i))
			a, b := jumpHash(h, n), jumpHash(h, n+1)
			if a < 0 || a >= n || b < 0 || b > n {
				t.Fatalf("out of range: %d of %d, %d of %d", a, n, b, n+1)
			}
			if a != b {
				if b != n {
					t.Fatalf("moved between old shards %d -> %d", a, b)
				}
				moved++
			}
		}
		want := keys / (n + 1)
		if moved < want*8/10 || moved > want*12/10 {
			t.Errorf("%d -> %d shards moved %d, want about %d", n, n+1, moved, want)
		}
	}
}
