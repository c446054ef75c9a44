package auth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestMatch(t *testing.T) {
	cases := []struct {
		p, n string
		want bool
	}{
		{"*", "anything:at-all", true}, {"chat:*", "chat:lobby", true}, {"chat:*", "chats:x", false},
		{"chat:?", "chat:a", true}, {"chat:?", "chat:ab", false}, {"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false}, {"exact", "exact", true}, {"exact", "exactly", false}, {"", "", true},
	}
	for _, c := range cases {
		if got := Match(c.p, c.n); got != c.want {
			t.Errorf("Match(%q,%q) = %v", c.p, c.n, got)
		}
	}
}

func TestVerify(t *testing.T) {
	v := NewVerifier(secret, []string{"public:*"})
	tok, _ := Mint(secret, TokenSpec{Subject: "al", TTL: time.Hour, Publish: []string{"chat:*"}, Info: json.RawMessage(`{"name":"Al"}`)})
	id, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "al" || !id.CanSubscribe("public:x") || id.CanSubscribe("chat:x") || !id.CanPublish("chat:x") || string(id.Info) != `{"name":"Al"}` {
		t.Fatalf("identity %+v", id)
	}
	bad := []string{"", "a.b.c", tok[:len(tok)-2] + "xx"}
	expired, _ := Mint(secret, TokenSpec{Subject: "al", TTL: -time.Minute})
	bad = append(bad, expired)
	none := strings.Join([]string{"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", "eyJzdWIiOiJ4In0", ""}, ".")
	bad = append(bad, none)
	for _, b := range bad {
		if _, err := v.Verify(b); err == nil {
			t.Errorf("accepted %q", b)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("chat:*", "chat:lobby")
	f.Add("a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	f.Fuzz(func(t *testing.T, p, n string) {
		_ = Match(p, n)
		if !strings.ContainsAny(n, "*?") && !Match(n, n) {
			t.Fatalf("%q does not match itself", n)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v := NewVerifier(secret, []string{"*"})
	tok, _ := Mint(secret, TokenSpec{Subject: "al", TTL: time.Hour, Channels: []string{"chat:*"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
