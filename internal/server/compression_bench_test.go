package server

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/lxzan/gws"

	"github.com/eddyrt/eddy/internal/protocol"
)

// chatFrames returns n chat-like message frames as the hub encodes them.
func chatFrames(n int) [][]byte {
	texts := []string{"hi all", "anyone up for lunch at noon?", "the build is green again, thanks Bob", "ok", "see the doc I shared this morning, section 3 has the numbers"}
	var out [][]byte
	for i := 0; i < n; i++ {
		data := fmt.Sprintf(`{"text":%q,"name":"user %d","avatar":"https://cdn.example.com/a/%d.png","reply_to":null}`, texts[i%len(texts)], i%9, i%9)
		m := &protocol.Message{Channel: "chat:lobby", Event: "new-post", Data: []byte(data), ID: fmt.Sprintf("m-ABCDE12-%d", 1000+i), TS: 1764750000000 + int64(i), Offset: uint64(100 + i), Epoch: "e1d2c3"}
		out = append(out, protocol.AppendMessage(nil, m))
	}
	return out
}

// BenchmarkDeflateChat is the cost and gain of permessage-deflate as the
// server runs it (BestSpeed, no context takeover: each WebSocket message
// deflated on its own) on chat-like messages, one per WebSocket message and
// batched as the outbox sends them under load.
func BenchmarkDeflateChat(b *testing.B) {
	for _, per := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("%d-per-ws-message", per), func(b *testing.B) {
			frames := chatFrames(per)
			msg := bytes.Join(frames, []byte("\n"))
			var dst bytes.Buffer
			w, _ := flate.NewWriter(&dst, flate.BestSpeed)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dst.Reset()
				w.Reset(&dst)
				_, _ = w.Write(msg)
				_ = w.Flush()
			}
			wire := dst.Len() - 4 // the deflate tail is not sent
			b.ReportMetric(float64(len(msg))/float64(wire), "ratio")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(per), "ns/chat-msg")
			b.ReportMetric(float64(len(msg))/float64(per), "bytes/chat-msg")
			b.ReportMetric(float64(wire)/float64(per), "wire-bytes/chat-msg")
		})
	}
}

// BenchmarkDeflateMemory is what compression: true costs in memory: gws
// keeps a fixed pool of compressors per upgrader, none per connection when
// there is no context takeover.
func BenchmarkDeflateMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		u := gws.NewUpgrader(&gws.BuiltinEventHandler{}, &gws.ServerOption{PermessageDeflate: deflateOption(true)})
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(u)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-per-server")
	}
}
