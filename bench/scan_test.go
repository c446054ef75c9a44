package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestScanBatchAnswer(t *testing.T) {
	for _, c := range []struct {
		in string
		n  int
		ok bool
	}{
		{`{"results":[{"id":"m-1","offset":7},{"id":"m-2"}]}` + "\n", 2, true},
		{`{"results":[]}`, 0, true},
		{`{"results":[{"id":"m-1","offset":0}]}`, 1, true},
		// Left to encoding/json: an item's error, escapes, other spellings.
		{`{"results":[{"id":"m-1"},{"error":{"code":"rate_limited","message":"slow down"}}]}`, 0, false},
		{`{"results":[{"id":"m\"1"}]}`, 0, false},
		{`{"results":[{"id":"m-1","offset":07}]}`, 0, false},
		{`{"results":[{"id":"m-1","offset":}]}`, 0, false},
		{`{"results": [{"id":"m-1"}]}`, 0, false},
		{`{"results":[{"id":"m-1"}]`, 0, false},
		{`{"results":[{"id":"m-1"},]}`, 0, false},
		{`{"results":[{"id":"m-1`, 0, false},
		{`{"results":[{"id":"`, 0, false},
	} {
		n, ok := scanBatchAnswer([]byte(c.in))
		if n != c.n || ok != c.ok {
			t.Errorf("%s: got %d %v, want %d %v", c.in, n, ok, c.n, c.ok)
		}
	}
}

// FuzzScanBatchAnswer: whatever the scan accepts, encoding/json decodes to
// the same number of results, none with an error.
func FuzzScanBatchAnswer(f *testing.F) {
	f.Add([]byte(`{"results":[{"id":"m-1","offset":7},{"id":"m-2"}]}` + "\n"))
	f.Add([]byte(`{"results":[{"id":"m-1"},{"error":{"code":"x","message":"y"}}]}`))
	f.Add([]byte(`{"results":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := scanBatchAnswer(b)
		if !ok {
			return
		}
		var a batchAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("scan accepted %q (%d items), json: %v", b, n, err)
		}
		if len(a.Results) != n {
			t.Fatalf("scan %d items, json %d: %q", n, len(a.Results), b)
		}
		for _, r := range a.Results {
			if r.Error != nil {
				t.Fatalf("scan accepted an error item: %q", b)
			}
		}
	})
}

// frames builds server frames (unmasked unless mask is given).
func frame(fin bool, op byte, p []byte, mask []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch n := len(p); {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if mask == nil {
		return append(b, p...)
	}
	b = append(b, mask...)
	for i, c := range p {
		b = append(b, c^mask[i&3])
	}
	return b
}

// parseAll parses in as if it was all read at once.
func parseAll(in []byte) (msgs []string, err error) {
	c := &wsConn{fd: -1, rb: append([]byte(nil), in...), size: 512}
	c.w = len(c.rb)
	for {
		msg, need, err := c.parse()
		if err != nil {
			return msgs, err
		}
		if need > 0 {
			return msgs, nil
		}
		msgs = append(msgs, string(msg))
	}
}

// parseChunked parses in as the poller does: reads of at most chunk bytes
// into a shared buffer of sharedSize, a partial frame kept in the
// connection's own buffer between reads.
func parseChunked(in []byte, chunk, sharedSize int) (msgs []string, err error) {
	c := &wsConn{fd: -1, size: 16}
	shared := make([]byte, sharedSize)
	for len(in) > 0 {
		isShared := c.r == c.w
		if isShared {
			c.rb, c.r, c.w = shared, 0, 0
		} else {
			c.reserve()
		}
		n := copy(c.rb[c.w:], in[:min(chunk, len(in))])
		in = in[n:]
		c.w += n
		for {
			msg, need, err := c.parse()
			if err != nil {
				return msgs, err
			}
			if need > 0 {
				c.need = need
				break
			}
			msgs = append(msgs, string(msg))
		}
		if isShared {
			c.keepRest()
		}
	}
	return msgs, nil
}

func TestParseChunked(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	var in []byte
	in = append(in, frame(true, 0x1, []byte(`{"type":"message","a":1}`), nil)...)
	in = append(in, frame(true, 0xA, []byte("pong"), nil)...) // skipped
	in = append(in, frame(false, 0x1, []byte("frag-"), nil)...)
	in = append(in, frame(true, 0x0, []byte("ment"), nil)...)
	in = append(in, frame(true, 0x1, big[:300], nil)...)
	in = append(in, frame(true, 0x1, big, nil)...)
	in = append(in, frame(true, 0x1, []byte("masked"), []byte{1, 2, 3, 4})...)
	in = append(in, frame(true, 0x8, []byte{0x03, 0xe8, 'b', 'y', 'e'}, nil)...)
	want := []string{`{"type":"message","a":1}`, "frag-ment", string(big[:300]), string(big), "masked"}
	for _, chunk := range []int{1, 3, 100, 1 << 20} {
		for _, size := range []int{7, 64, 64 << 10} {
			got, err := parseChunked(in, chunk, size)
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != 1000 || ce.Reason != "bye" {
				t.Fatalf("chunk %d, shared %d: %v, want the close frame", chunk, size, err)
			}
			if len(got) != len(want) {
				t.Fatalf("chunk %d, shared %d: %d messages, want %d", chunk, size, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("chunk %d, shared %d: message %d differs (%d bytes, want %d)", chunk, size, i, len(got[i]), len(want[i]))
				}
			}
		}
	}
}

func TestParseRefusesHugeFrame(t *testing.T) {
	in := []byte{0x81, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if _, err := parseAll(in); err == nil {
		t.Fatal("a frame of 2^63 bytes was not refused")
	}
}

// FuzzParseChunked: the poller's way of reading (pieces, a shared buffer,
// partial frames kept aside) gives the same messages as one whole read,
// and no input makes parse panic.
func FuzzParseChunked(f *testing.F) {
	f.Add(append(frame(true, 0x1, []byte("hello"), nil), frame(false, 0x1, []byte("a"), nil)...), 3, 8)
	f.Add(frame(true, 0x1, bytes.Repeat([]byte("y"), 300), []byte{9, 8, 7, 6}), 1, 5)
	f.Fuzz(func(t *testing.T, in []byte, chunk, size int) {
		chunk = 1 + abs(chunk)%64
		size = 1 + abs(size)%128
		want, werr := parseAll(in)
		got, gerr := parseChunked(in, chunk, size)
		if (werr == nil) != (gerr == nil) || len(got) != len(want) {
			t.Fatalf("whole: %d messages, %v; in pieces of %d (shared %d): %d messages, %v", len(want), werr, chunk, size, len(got), gerr)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("message %d differs", i)
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
