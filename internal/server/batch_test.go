package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// postBatch sends body to /api/v1/batch and decodes a 200 answer.
func postBatch(t *testing.T, s *servertest.Server, body string) []api.BatchResult {
	t.Helper()
	status, eb, raw := doRaw(t, http.MethodPost, s.APIBase()+"/api/v1/batch", servertest.APIKey, body)
	if status != http.StatusOK {
		t.Fatalf("batch: %d %s (%v)", status, raw, eb)
	}
	var out api.BatchResponse
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("batch answer %q: %v", raw, err)
	}
	return out.Results
}

// TestBatchPerItemErrors: refused items are reported in their place and
// never stop the good ones around them from being published.
func TestBatchPerItemErrors(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxMessageBytes = 1024 })
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "a"})
	ws.Request(map[string]any{"type": "subscribe", "id": 2, "channel": "b"})

	items := []string{
		`{"channel":"a","event":"e","data":{"n":1}}`,
		`{"channel":"bad channel","event":"e","data":1}`,
		`{"channel":"b","event":"e","data":{"n":2}}`,
		`{"channel":"a","event":"e","data":"` + strings.Repeat("x", 2000) + `"}`,
		`{"channel":"a","data":1}`,
		`{"channel":5,"event":"e"}`,
		`{"channel":"a","event":"e","data":{"n":}}`,
		`{"channels":["a","b"],"event":"e","data":1}`,
		`[1,2]`,
		`{"channel":"a","event":"e","data":{"n":3}}`,
	}
	res := postBatch(t, s, `{"messages":[`+strings.Join(items, ",")+`]}`)
	if len(res) != len(items) {
		t.Fatalf("%d results for %d items: %+v", len(res), len(items), res)
	}
	wantErr := map[int]string{1: "bad_request", 3: "too_large", 4: "bad_request", 5: "bad_request", 6: "bad_request", 7: "bad_request", 8: "bad_request"}
	for i, r := range res {
		code, bad := wantErr[i]
		switch {
		case bad && (r.Error == nil || r.Error.Code != code || r.Error.Message == "" || r.ID != ""):
			t.Errorf("item %d: %+v, want error %s", i, r, code)
		case !bad && (r.Error != nil || r.ID == "" || r.Offset == 0):
			t.Errorf("item %d: %+v, want an id and offset", i, r)
		}
	}
	if res[0].Offset != 1 || res[9].Offset != 2 || res[2].Offset != 1 {
		t.Fatalf("offsets %d %d %d, want a:1, b:1, a:2", res[0].Offset, res[2].Offset, res[9].Offset)
	}
	// The subscriber sees exactly the three good items, in batch order.
	for _, want := range []struct {
		ch string
		n  float64
		id string
	}{{"a", 1, res[0].ID}, {"b", 2, res[2].ID}, {"a", 3, res[9].ID}} {
		m := ws.Expect("message")
		if m.Str("channel") != want.ch || m["data"].(map[string]any)["n"] != want.n || m.Str("id") != want.id {
			t.Fatalf("got %v, want n=%v on %s with id %s", m, want.n, want.ch, want.id)
		}
	}
	// Nothing else was delivered: a marker published now arrives next.
	if _, err := s.API().Publish(context.Background(), "a", "marker", 0); err != nil {
		t.Fatal(err)
	}
	if m := ws.Expect("message"); m.Str("event") != "marker" {
		t.Fatalf("after the batch, got %v, want the marker", m)
	}
}

// TestBatchKeepsOrderWithinChannel: interleaved items of several channels
// arrive on each channel in batch order with consecutive offsets, and the
// results report those offsets.
func TestBatchKeepsOrderWithinChannel(t *testing.T) {
	s := servertest.Start(t)
	const channels, items = 3, 600
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	for c := 0; c < channels; c++ {
		ws.Request(map[string]any{"type": "subscribe", "id": c + 1, "channel": fmt.Sprintf("o%d", c)})
	}
	msgs := make([]api.BatchMessage, items)
	for i := range msgs {
		m, err := api.NewBatchMessage(fmt.Sprintf("o%d", i%channels), "e", map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	res, err := s.API().Batch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Error != nil || r.Offset != uint64(i/channels+1) {
			t.Fatalf("item %d: %+v, want offset %d", i, r, i/channels+1)
		}
	}
	next := make([]int, channels) // next expected i per channel
	for c := range next {
		next[c] = c
	}
	for n := 0; n < items; n++ {
		m := ws.Expect("message")
		var c int
		if _, err := fmt.Sscanf(m.Str("channel"), "o%d", &c); err != nil {
			t.Fatal(err)
		}
		i := int(m["data"].(map[string]any)["i"].(float64))
		if i != next[c] || m.Num("offset") != float64(i/channels+1) || m.Str("id") != res[i].ID {
			t.Fatalf("channel o%d: got item %d offset %v, want item %d", c, i, m.Num("offset"), next[c])
		}
		next[c] += channels
	}
}

// TestBatchFunctionRejectsOneItem: each item goes through the channel's
// functions; one rejected item is reported and the rest are published as
// the functions changed them.
func TestBatchFunctionRejectsOneItem(t *testing.T) {
	s := servertest.StartNode(t)
	deploy(t, s, "guard", js(`function handle(m, ctx){ if (m.data.text === "bad") ctx.reject("no bad words"); m.data.text += "!"; return m }`))
	deploy(t, s, "filter", js(`function handle(m){ return m.data.text === "spam!" ? null : m }`))
	associate(t, s, "room:*", "", "guard", "filter")
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "room:1"})

	var msgs []api.BatchMessage
	for _, text := range []string{"one", "bad", "spam", "two"} {
		m, _ := api.NewBatchMessage("room:1", "say", map[string]string{"text": text})
		msgs = append(msgs, m)
	}
	res, err := s.API().Batch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Error != nil || res[0].Offset != 1 {
		t.Fatalf("item 0: %+v", res[0])
	}
	if res[1].Error == nil || res[1].Error.Code != "rejected" || !strings.Contains(res[1].Error.Message, "no bad words") {
		t.Fatalf("item 1: %+v, want rejected with the function's reason", res[1])
	}
	// Dropped by a function: acknowledged with an id, but it has no offset.
	if res[2].Error != nil || res[2].ID == "" || res[2].Offset != 0 {
		t.Fatalf("item 2: %+v, want an id and no offset", res[2])
	}
	if res[3].Error != nil || res[3].Offset != 2 {
		t.Fatalf("item 3: %+v", res[3])
	}
	for _, want := range []string{"one!", "two!"} {
		m := ws.Expect("message")
		if got := m["data"].(map[string]any)["text"]; got != want {
			t.Fatalf("got %v, want %s", got, want)
		}
	}
}

// TestBatchRequestErrors: a batch that cannot be read as a whole, or that
// is over max_batch, is refused with a named error and publishes nothing.
func TestBatchRequestErrors(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxBatch = 3 })
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "u", nil, nil))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "a"})
	item := `{"channel":"a","event":"e","data":1}`
	url := s.APIBase() + "/api/v1/batch"
	cases := []struct {
		name, key, body string
		status          int
		code, mention   string
	}{
		{"over max_batch", servertest.APIKey, `{"messages":[` + strings.Repeat(item+",", 3) + item + `]}`, 413, "too_large", "max_batch (3)"},
		{"no key", "", `{"messages":[` + item + `]}`, 401, "unauthorized", "API key"},
		{"malformed", servertest.APIKey, `{"messages":[` + item, 400, "bad_request", "malformed"},
		{"mismatched brackets", servertest.APIKey, `{"messages":[{"channel":"a","data":[1}, ` + item + `]}`, 400, "bad_request", "mismatched"},
		{"no messages", servertest.APIKey, `{"items":[]}`, 400, "bad_request", `"messages"`},
		{"empty", servertest.APIKey, `{"messages":[]}`, 400, "bad_request", "no messages"},
		{"not an array", servertest.APIKey, `{"messages":{}}`, 400, "bad_request", "array"},
		{"trailing", servertest.APIKey, `{"messages":[` + item + `]} x`, 400, "bad_request", "after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, eb, raw := doRaw(t, http.MethodPost, url, c.key, c.body)
			if status != c.status || eb.Error.Code != c.code || !strings.Contains(eb.Error.Message, c.mention) {
				t.Fatalf("got %d %s, want %d %s mentioning %s", status, raw, c.status, c.code, c.mention)
			}
		})
	}
	if status, _, _ := doRaw(t, http.MethodGet, url, servertest.APIKey, ""); status != http.StatusMethodNotAllowed {
		t.Fatalf("GET batch: %d, want 405", status)
	}
	msgs := make([]api.BatchMessage, 4)
	for i := range msgs {
		msgs[i] = api.BatchMessage{Channel: "a", Event: "e"}
	}
	if _, err := s.API().Batch(context.Background(), msgs); !isStatus(err, 413) {
		t.Fatalf("Go client over max_batch: %v, want a 413 *api.Error", err)
	}
	// None of the refused batches published anything: exactly max_batch works
	// and its first message is the first the subscriber sees.
	res := postBatch(t, s, `{"messages":[{"channel":"a","event":"first","data":null},`+item+`,`+item+`]}`)
	if len(res) != 3 || res[0].Offset != 1 {
		t.Fatalf("batch of max_batch: %+v", res)
	}
	if m := ws.Expect("message"); m.Str("event") != "first" {
		t.Fatalf("got %v, want the first message of the accepted batch", m)
	}
}

// TestBatchChunkedBody: a body without Content-Length is read to its end,
// and one over the limit is refused with too_large.
func TestBatchChunkedBody(t *testing.T) {
	s := servertest.Start(t, func(c *config.Config) { c.MaxMessageBytes, c.MaxBatch = 1024, 10 })
	post := func(body string) (int, string) {
		// A reader of unknown length makes the client send it chunked.
		req, _ := http.NewRequest(http.MethodPost, s.APIBase()+"/api/v1/batch", io.MultiReader(strings.NewReader(body)))
		req.Header.Set("Authorization", "Bearer "+servertest.APIKey)
		if req.ContentLength != 0 || req.TransferEncoding != nil {
			t.Fatalf("request would not be chunked: %d %v", req.ContentLength, req.TransferEncoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, raw := post(`{"messages":[{"channel":"a","event":"e","data":1},{"channel":"b","event":"e","data":2}]}`); status != 200 || strings.Count(raw, `"offset":1`) != 2 {
		t.Fatalf("chunked batch: %d %s", status, raw)
	}
	// The limit is 16 x (max_message_bytes + 4 KiB) here: 80 KiB.
	big := `{"messages":[{"channel":"a","event":"e","data":"` + strings.Repeat("x", 100<<10) + `"}]}`
	if status, raw := post(big); status != http.StatusRequestEntityTooLarge || !strings.Contains(raw, "too_large") {
		t.Fatalf("oversized chunked batch: %d %s", status, raw)
	}
}
