package server

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/protocol"
)

func TestDecodePublishBody(t *testing.T) {
	good := []struct {
		body, channel, event, data string
		channels                   []string
	}{
		{`{"channel":"a","event":"e","data":{"x":[1,"]}"]}}`, "a", "e", `{"x":[1,"]}"]}`, nil},
		{` { "event" : "e\u00e9\n" , "channels" : ["a", "b"], "data" : 12.5e3 } `, "", "e\u00e9\n", `12.5e3`, []string{"a", "b"}},
		{`{"channel":"a","event":"e","extra":{"ignored":[true,null]}}`, "a", "e", ``, nil},
		{`{"channel":"a","event":"e","data":"q\"uote"}`, "a", "e", `"q\"uote"`, nil},
		{`{}`, "", "", "", nil},
	}
	for _, g := range good {
		p, err := decodePublishBody([]byte(g.body))
		if err != nil {
			t.Fatalf("%s: %v", g.body, err)
		}
		if p.channel != g.channel || p.event != g.event || string(p.data) != g.data || !slices.Equal(p.channels, g.channels) {
			t.Fatalf("%s: got %+v", g.body, p)
		}
	}
	bad := []string{
		``, `[]`, `{"channel":"a"`, `{"channel":"a",}`, `{"channel":"a"} {}`, `{"channel":1}`,
		`{"channels":"a"}`, `{"channels":[1]}`, `{"x":[}`, `{"x":tru}`, `{"data":[1}`, `{"data":"open}`,
		`{"event":"a` + "\x01" + `"}`, `{"data":1,"data":{]}`, `{"channel" "a"}`,
		`{"data":` + strings.Repeat("[", maxSkipDepth+1) + strings.Repeat("]", maxSkipDepth+1) + `}`,
	}
	for _, b := range bad {
		if _, err := decodePublishBody([]byte(b)); err == nil || protocol.AsError(err).Code != protocol.CodeBadRequest {
			t.Errorf("%q: got %v, want bad_request", b, err)
		}
	}
}

// FuzzDecodePublishBody: whatever the hand decoder accepts (with data then
// checked by CompactData, as publish does) is valid JSON, and means what
// encoding/json reads in it.
func FuzzDecodePublishBody(f *testing.F) {
	for _, s := range []string{
		`{"channel":"a","event":"e","data":{"x":[1,"]}"]}}`,
		`{"channels":["a","b"],"event":"\u00e9","data":null}`,
		`{"channel":"a","event":"e","data":"a\\\"b","x":{"y":[]}}`,
		`{"messages":[{"channel":"a","event":"e"}]}`,
		`{"data":[1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePublishBody(body)
		if err != nil {
			return
		}
		data, derr := protocol.CompactData(p.data)
		if derr != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var ref api.PublishRequest
		if json.Unmarshal(body, &ref) != nil {
			return // e.g. a key differing only in case, which we ignore
		}
		if !utf8.Valid(body) || bytes.ContainsAny(bytes.ToLower(body), "\u017f\u212a") || bytes.ContainsFunc(body, func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
			return // encoding/json folds key case and replaces bad UTF-8
		}
		if p.channel != ref.Channel || p.event != ref.Event || !slices.Equal(p.channels, ref.Channels) {
			t.Fatalf("%q: got %q %q %q, encoding/json %q %q %q", body, p.channel, p.event, p.channels, ref.Channel, ref.Event, ref.Channels)
		}
		want, _ := protocol.CompactData(ref.Data)
		if !bytes.Equal(data, want) {
			t.Fatalf("%q: data %s, encoding/json %s", body, data, want)
		}
	})
}

// FuzzSplitBatch: the items located in a batch are exactly the elements
// encoding/json sees in "messages", whenever the body is valid JSON.
func FuzzSplitBatch(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"channel":"a","event":"e","data":1},{"channel":"b"}]}`,
		`{"x":1,"messages":[[],"s",3,{"a":"]"}]}`,
		`{"messages":[{"data":[1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := splitBatch(body, 1000)
		var ref struct {
			Messages []json.RawMessage `json:"messages"`
		}
		if !json.Valid(body) || json.Unmarshal(body, &ref) != nil || bytes.ContainsFunc(body, func(r rune) bool { return r >= 'A' && r <= 'Z' || r > 0x7f }) {
			return
		}
		if len(ref.Messages) == 0 || len(ref.Messages) > 1000 {
			return
		}
		if err != nil {
			t.Fatalf("%q: %v, but encoding/json reads %d messages", body, err, len(ref.Messages))
		}
		if len(items) != len(ref.Messages) {
			t.Fatalf("%q: %d items, encoding/json %d", body, len(items), len(ref.Messages))
		}
		for i := range items {
			if !bytes.Equal(items[i], ref.Messages[i]) {
				t.Fatalf("%q: item %d is %q, encoding/json %q", body, i, items[i], ref.Messages[i])
			}
		}
	})
}

// FuzzPublishEntry runs untrusted HTTP API publish bodies through what the
// server does with them (decodeCheckedPublishBody, targets, then
// protocol.CheckPublish) and holds it to the entry contract: a body is
// refused with a client error whose message is valid UTF-8, or accepted,
// and then every message it makes is a valid text frame that batching
// cannot split. Nothing panics.
func FuzzPublishEntry(f *testing.F) {
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
		var channels []string
		var data json.RawMessage
		p, err := decodeCheckedPublishBody("body", body)
		if err == nil {
			channels, err = p.targets()
		}
		if err == nil {
			channels, data, err = protocol.CheckPublish(channels, p.event, p.data, 4096)
		}
		if err != nil {
			pe, ok := err.(*protocol.Error)
			if !ok || (pe.Code != protocol.CodeBadRequest && pe.Code != protocol.CodeTooLarge) || pe.Message == "" || !utf8.ValidString(pe.Message) {
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
			frame := protocol.AppendMessage(nil, &protocol.Message{Channel: ch, Event: p.event, Data: data, ID: "m-1", TS: 1, Offset: 1, Epoch: "E", User: "u"})
			if !utf8.Valid(frame) || !json.Valid(frame) || bytes.ContainsAny(frame, "\n\r") {
				t.Fatalf("body %q: accepted, and delivered as the invalid frame %q", body, frame)
			}
		}
	})
}
