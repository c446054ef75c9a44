package functions

import (
	"slices"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "chat:lobby", true},
		{"chat:*", "chat:lobby", true},
		{"chat:*", "chat:", true},
		{"chat:*", "chats:x", false},
		{"chat:?", "chat:a", true},
		{"chat:?", "chat:é", true},
		{"chat:?", "chat:ab", false},
		{"*:lobby", "chat:lobby", true},
		{"*:lobby", "chat:lobby2", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"exact", "exact", true},
		{"exact", "exac", false},
	}
	for _, c := range cases {
		if got := match(c.p, c.s); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func TestRunsBefore(t *testing.T) {
	ps := []string{"*", "chat:*", "chat:?oom", "c*", "chat:room", "a:*", "*:*"}
	slices.SortFunc(ps, func(a, b string) int {
		if runsBefore(a, b) {
			return -1
		}
		if runsBefore(b, a) {
			return 1
		}
		return 0
	})
	want := []string{"chat:room", "chat:*", "chat:?oom", "a:*", "c*", "*", "*:*"}
	if !slices.Equal(ps, want) {
		t.Fatalf("order %q, want %q", ps, want)
	}
}
