package server

import (
	"compress/flate"
	"runtime"

	"github.com/lxzan/gws"
)

// compressThreshold is the smallest WebSocket message worth compressing.
// Without a shared window each message is deflated on its own, and a single
// chat message (a frame of 150-300 bytes) shrinks too little to pay for it;
// batched frames (several messages in one WebSocket message) are longer and
// compress well (bench/README.md, "permessage-deflate").
const compressThreshold = 512

// deflateOption is permessage-deflate as the server offers it when
// compression is on. Neither side keeps its window between messages
// (no context takeover): a window is 32 KiB per direction per connection,
// more than an idle connection costs in all, while without takeover the
// compressors are a small shared pool.
func deflateOption(on bool) gws.PermessageDeflate {
	if !on {
		return gws.PermessageDeflate{}
	}
	return gws.PermessageDeflate{
		Enabled:               true,
		Level:                 flate.BestSpeed,
		Threshold:             compressThreshold,
		ServerContextTakeover: false,
		ClientContextTakeover: false,
		// gws allocates the whole pool up front, and a compressor is large
		// (BenchmarkDeflateMemory). The writers that compress are 4 per
		// core (newWriterPool): as many compressors keep them from waiting
		// on one another.
		PoolSize: min(4*runtime.GOMAXPROCS(0), 64),
	}
}
