package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateChannel(t *testing.T) {
	for _, ok := range []string{"a", "chat:lobby", "user@example.com", "a=b.c-d_e", strings.Repeat("x", 255)} {
		if err := ValidateChannel(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "chat:*", "x?", "ü", "a/b", strings.Repeat("x", 256), "a\nb"} {
		if err := ValidateChannel(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAppendMessageIsValidJSONAndMatchesEncodingJSON(t *testing.T) {
	m := &Message{Channel: "c", Event: "we\"ird\n<e>\u2028\xff", Data: json.RawMessage(`{"a":[1,2]}`), ID: "m-1", TS: 5, Offset: 7, Epoch: "E", User: "u\\"}
	b := AppendMessage(nil, m)
	var back struct {
		Type string `json:"type"`
		Message
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	if back.Type != "message" || back.Event != "we\"ird\n<e>\u2028\uFFFD" || back.User != m.User || back.Offset != 7 || string(back.Data) != `{"a":[1,2]}` {
		t.Fatalf("round trip: %+v", back)
	}
	if strings.ContainsRune(string(b), '\n') {
		t.Fatal("frame contains a raw newline, which would split a batch")
	}
}

func TestCompactDataRemovesNewlines(t *testing.T) {
	out, err := CompactData(json.RawMessage("{\n \"a\" : 1\n}"))
	if err != nil || string(out) != `{"a":1}` {
		t.Fatalf("%s %v", out, err)
	}
	if _, err := CompactData(json.RawMessage("{oops")); err == nil {
		t.Fatal("invalid JSON accepted")
	}
}

// FuzzDecodeClientFrame: untrusted bytes from the socket never panic, and
// every frame accepted carries what its type needs.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"auth","token":"x"}`, `{"type":"subscribe","id":1,"channel":"a:b"}`,
		`{"type":"publish","id":2,"channel":"c","event":"e","data":{"x":[1]}}`,
		`{"type":"subscribe","id":1,"channel":"a","since":{"epoch":"E","offset":3}}`,
		`{"type":"ping","id":1}`, `{"type":`, `[]`, `null`, `{"type":"publish","id":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeClientFrame(b)
		if err != nil {
			if AsError(err).Code != CodeBadRequest {
				t.Fatalf("decode error code %q", AsError(err).Code)
			}
			return
		}
		switch fr.Type {
		case TypeSubscribe, TypeUnsubscribe, TypePublish, TypePresence:
			if ValidateChannel(fr.Channel) != nil {
				t.Fatalf("accepted invalid channel %q", fr.Channel)
			}
		case TypeAuth, TypeRefresh:
			if fr.Token == "" {
				t.Fatal("accepted auth without token")
			}
		}
		if fr.Type != TypeAuth && fr.ID == 0 {
			t.Fatal("accepted request without id")
		}
	})
}

func FuzzValidateChannel(f *testing.F) {
	for _, s := range []string{"chat:lobby", "", "a b", "x*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateChannel(s) != nil {
			return
		}
		// Accepted names are safe to embed anywhere: valid JSON when quoted.
		b := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("%q: %s %v", s, b, err)
		}
	})
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\xff\u2028\"\\<>&")
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, b, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q: got %q, encoding/json gives %q", s, back, wantBack)
		}
	})
}

func BenchmarkAppendMessage(b *testing.B) {
	m := &Message{Channel: "chat:lobby", Event: "new-post", Data: json.RawMessage(`{"text":"hello world","n":42}`), ID: "m-ABCDEFGH-1", TS: 1700000000000, Offset: 12345, Epoch: "EPOCH123"}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], m)
	}
}

func BenchmarkDecodeClientFrame(b *testing.B) {
	frame := []byte(`{"type":"publish","id":3,"channel":"chat:lobby","event":"new-post","data":{"text":"hi"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeClientFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}
