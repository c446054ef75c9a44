package protocol

import (
	"fmt"
	"testing"
)

func TestJoinBatchSplitsAtTheLimit(t *testing.T) {
	frames := [][]byte{[]byte("aaaa"), []byte("bbbb"), []byte("cccc"), []byte("dddddddddddd")}
	var got []string
	for rest := frames; len(rest) > 0; {
		var joined []byte
		joined, rest = JoinBatch(rest, 10)
		got = append(got, string(joined))
	}
	if want := []string{"aaaa\nbbbb", "cccc", "dddddddddddd"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
