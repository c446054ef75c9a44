package server_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/eddyrt/eddy/internal/servertest"
)

// BenchmarkHTTPPublish drives single-message publishes through real HTTP
// requests on keep-alive connections (16 at a time, as bench/README.md's
// single-publish runs do) to channels with one subscriber each. ns/op and
// allocs/op include the client's share: compare runs, not absolute values.
func BenchmarkHTTPPublish(b *testing.B) {
	s := servertest.Start(b)
	const channels = 16
	for i := 0; i < channels; i++ {
		ws := servertest.Connect(b, s.WSURL, servertest.Token(b, "u", nil, nil))
		ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "c" + strconv.Itoa(i)})
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	url := s.APIBase() + "/api/v1/publish"
	b.SetParallelism(8) // 16 requests in flight on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf []byte
		for i := 0; pb.Next(); i++ {
			buf = append(buf[:0], `{"channel":"c`...)
			buf = strconv.AppendInt(buf, int64(i%channels), 10)
			buf = append(buf, `","event":"e","data":{"text":"hello there","n":`...)
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, `}}`...)
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(buf))
			req.Header.Set("Authorization", "Bearer "+servertest.APIKey)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("publish: %s", resp.Status)
				return
			}
		}
	})
}
