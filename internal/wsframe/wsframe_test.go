package wsframe

import (
	"bytes"
	"testing"
)

func TestMaskBytesMatchesBytewise(t *testing.T) {
	key := []byte{0x12, 0x34, 0x56, 0x78}
	for n := 0; n < 40; n++ {
		b := bytes.Repeat([]byte{0xa5}, n)
		want := make([]byte, n)
		for i := range b {
			want[i] = b[i] ^ key[i%4]
		}
		maskBytes(b, key)
		if !bytes.Equal(b, want) {
			t.Fatalf("len %d: %x, want %x", n, b, want)
		}
	}
}

func TestCloseReply(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		want    uint16
	}{
		{nil, 0},
		{[]byte{0x03}, 1002},
		{[]byte{0x03, 0xe8}, 1000},
		{[]byte{0x03, 0xe9, 'x'}, 1000},
		{[]byte{0x03, 0xed}, 1002}, // 1005 is never sent
		{[]byte{0x03, 0xf8}, 1002}, // 1016..2999 unassigned
		{[]byte{0x0f, 0xa0}, 4000},
		{[]byte{0x13, 0x88}, 1002}, // 5000
		{[]byte{0x03, 0xe7}, 1002}, // 999
	} {
		if got := CloseReply(tc.payload); got != tc.want {
			t.Errorf("CloseReply(%x) = %d, want %d", tc.payload, got, tc.want)
		}
	}
}

// An idle Reader holds no buffer: one is borrowed while bytes wait and
// given back once they are decoded, and a long frame's own buffer goes too.
func TestReaderHoldsABufferOnlyWhileBytesWait(t *testing.T) {
	r := &Reader{Decoder: Decoder{MaxPayload: 1 << 20}}
	feed := func(b []byte) []Event {
		var evs []Event
		for len(b) > 0 {
			n := copy(r.Buffer(), b)
			r.Filled(n)
			b = b[n:]
			for {
				ev, ok, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				ev.Payload = append([]byte(nil), ev.Payload...)
				evs = append(evs, ev)
			}
		}
		r.Release()
		return evs
	}
	hello := frame(true, OpText, []byte("hello"))
	if evs := feed(hello); len(evs) != 1 || string(evs[0].Payload) != "hello" {
		t.Fatalf("events %v", evs)
	}
	if r.buf != nil || r.lent != nil {
		t.Fatal("the Reader kept a buffer with no bytes waiting")
	}
	if evs := feed(hello[:3]); len(evs) != 0 {
		t.Fatalf("events %v from half a frame", evs)
	}
	if r.lent == nil || r.Buffered() != 3 {
		t.Fatalf("half a frame: buffered %d, lent %v", r.Buffered(), r.lent != nil)
	}
	if evs := feed(hello[3:]); len(evs) != 1 || string(evs[0].Payload) != "hello" {
		t.Fatalf("events %v", evs)
	}
	long := bytes.Repeat([]byte("z"), 3*BufferSize)
	if evs := feed(frame(true, OpBinary, long)); len(evs) != 1 || !bytes.Equal(evs[0].Payload, long) {
		t.Fatal("long frame not decoded whole")
	}
	if r.buf != nil || r.lent != nil {
		t.Fatal("the Reader kept a buffer after a long frame")
	}
}

// Decoding a frame that sits whole in the buffer allocates nothing.
func TestReaderDecodesWithoutAllocating(t *testing.T) {
	r := &Reader{Decoder: Decoder{MaxPayload: 1 << 20}}
	msgs := bytes.Repeat(frame(true, OpText, []byte(`{"type":"ping","id":1}`)), 20)
	in := make([]byte, len(msgs))
	allocs := testing.AllocsPerRun(100, func() {
		copy(in, msgs) // Next unmasks in place
		b := in
		for len(b) > 0 {
			n := copy(r.Buffer(), b)
			r.Filled(n)
			b = b[n:]
			for {
				_, ok, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
			}
		}
		r.Release()
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per 20 frames", allocs)
	}
}

func BenchmarkReaderSmallFrames(b *testing.B) {
	r := &Reader{Decoder: Decoder{MaxPayload: 1 << 20}}
	f := frame(true, OpText, []byte(`{"type":"publish","id":1,"channel":"room","data":{"text":"hello there"}}`))
	b.SetBytes(int64(len(f)))
	for i := 0; i < b.N; i++ {
		n := copy(r.Buffer(), f)
		r.Filled(n)
		if _, ok, err := r.Next(); !ok || err != nil {
			b.Fatal(ok, err)
		}
		r.Next()
		r.Release()
	}
}
