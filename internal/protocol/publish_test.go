package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckPublishDedupesChannels(t *testing.T) {
	channels, _, err := CheckPublish([]string{"a", "b", "a", "c", "b"}, "e", json.RawMessage(`1`), 100)
	if err != nil || strings.Join(channels, ",") != "a,b,c" {
		t.Fatalf("%v %v", channels, err)
	}
	in := []string{"a", "b"}
	if out, _, _ := CheckPublish(in, "e", nil, 100); &out[0] != &in[0] {
		t.Fatal("channels without repeats were copied")
	}
}

// FuzzPublishBody runs untrusted HTTP API publish bodies through what the
// server does with them (DecodePublishBody, then CheckPublish) and holds
// it to the entry contract: a body is refused with a client error whose
// message is valid UTF-8, or accepted, and then every message it makes is
// a valid text frame that batching cannot split. Nothing panics.
func FuzzPublishBody(f *testing.F) {
	for _, s := range []string{
		`{"channel":"a","event":"e","data":{"text":"hi","n":[1,2.5]}}`,
		`{"channels":["a","b","a"],"event":"e","data":null}`,
		"{\"channel\":\"a\",\"event\":\"e\",\"data\":\"\xc3\x28\"}",
		`{"channel":"a","event":"e","data":[[[[[[[[[[1]]]]]]]]]]}`,
		`{"channel":"a","event":"e","data":1e999}`,
		"{\"channel\":\"a\",\"event\":\"\xff\",\"data\":1}",
		`{"channel":"a","event":"e<&>` + "\u2028" + `","data":"` + "\u2028" + `"}`,
		`{"channel":"a","event":"e","data":{"a" : [ 1 ,` + "\n" + `2 ] }}`,
		`{"channel":"a b","event":"e"}`, `{"channel":`, `[]`, `null`, ``,
		`{"channel":"a","channels":["b"],"event":"e"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		channels, event, data, err := DecodePublishBody(body)
		if err == nil {
			channels, data, err = CheckPublish(channels, event, data, 4096)
		}
		if err != nil {
			pe, ok := err.(*Error)
			if !ok || (pe.Code != CodeBadRequest && pe.Code != CodeTooLarge) || pe.Message == "" || !utf8.ValidString(pe.Message) {
				t.Fatalf("body %q: refused with %#v", body, err)
			}
			return
		}
		if len(channels) == 0 {
			t.Fatalf("body %q: accepted with no channel", body)
		}
		seen := map[string]bool{}
		for _, ch := range channels {
			if seen[ch] {
				t.Fatalf("body %q: channel %q twice", body, ch)
			}
			seen[ch] = true
			frame := AppendMessage(nil, &Message{Channel: ch, Event: event, Data: data, ID: "m-1", TS: 1, Offset: 1, Epoch: "E", User: "u"})
			if !utf8.Valid(frame) || !json.Valid(frame) || bytes.ContainsAny(frame, "\n\r") {
				t.Fatalf("body %q: accepted, and delivered as the invalid frame %q", body, frame)
			}
		}
	})
}
