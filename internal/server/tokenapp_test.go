package server

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// tokenAppJSON is tokenApp as it was, always through encoding/json.
func tokenAppJSON(token string) string {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) < 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		App string `json:"app"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.App
}

func tokenOf(payload string) string {
	return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

var tokenAppSeeds = []string{
	`{"sub":"u","exp":1}`, `{"sub":"u","app":"a1"}`, `{"APP":"a2"}`, `{"aPp":"a3","sub":"x"}`,
	`{"\u0061pp":"a4"}`, `{"app":"a5","app":"a6"}`, `{"app":1}`, `{"app":null}`, `{"sub":"app\""}`,
	`{"happ":"x"}`, `{"app ":"x"}`, `{`, `[]`, `{"sub":"` + strings.Repeat("x", 2000) + `","app":"big"}`,
}

func TestTokenApp(t *testing.T) {
	for _, p := range tokenAppSeeds {
		tok := tokenOf(p)
		if got, want := tokenApp(tok), tokenAppJSON(tok); got != want {
			t.Errorf("tokenApp(%s) = %q, want %q", p, got, want)
		}
	}
	for _, tok := range []string{"", "a", "a.b", "a.!!!.c", "a..c"} {
		if got := tokenApp(tok); got != "" {
			t.Errorf("tokenApp(%q) = %q, want none", tok, got)
		}
	}
}

// FuzzTokenApp: tokenApp reads the app claim of any token as
// encoding/json does; the input is the payload (and also the whole token).
func FuzzTokenApp(f *testing.F) {
	for _, p := range tokenAppSeeds {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, tok := range []string{tokenOf(in), in} {
			if got, want := tokenApp(tok), tokenAppJSON(tok); got != want {
				t.Fatalf("tokenApp(%q) = %q, want %q", tok, got, want)
			}
		}
	})
}
