package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// batchPublishers returns one publish function per HTTP worker for the
// batch scenario: each call sends one POST /api/v1/batch with an item per
// channel given, and counts each item the server accepted.
func (r *runner) batchPublishers(ctx context.Context, workers int) []func([]*channel) error {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	r.batchTransport = tr
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var out []func([]*channel) error
	for i := 0; i < workers; i++ {
		url := strings.TrimRight(r.o.API[i%len(r.o.API)], "/") + "/api/v1/batch"
		var buf []byte
		var answer batchAnswer
		out = append(out, func(chs []*channel) error {
			buf = append(buf[:0], `{"messages":[`...)
			for j, ch := range chs {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, `{"channel":"`...)
				buf = append(buf, ch.name...)
				buf = append(buf, `","event":"b","data":`...)
				buf = appendPayload(buf, ch.seq.Add(1), uint64(time.Now().UnixMicro()))
				buf = append(buf, '}')
			}
			buf = append(buf, "]}"...)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(buf))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+r.o.APIKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("batch: %s: %s", resp.Status, bytes.TrimSpace(body))
			}
			answer.Results = answer.Results[:0]
			if err := json.Unmarshal(body, &answer); err != nil || len(answer.Results) != len(chs) {
				return fmt.Errorf("batch: answer with %d results for %d messages (%v)", len(answer.Results), len(chs), err)
			}
			var firstErr error
			for j, res := range answer.Results {
				if res.Error != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("batch item refused: %s: %s", res.Error.Code, res.Error.Message)
					}
					continue
				}
				chs[j].sent.Add(1)
				r.sentAPI.Add(1)
			}
			return firstErr
		})
	}
	return out
}

func (r *runner) closeBatchPublishers() {
	if r.batchTransport != nil {
		r.batchTransport.CloseIdleConnections()
	}
}

// batchAnswer is the part of a batch answer the tool reads.
type batchAnswer struct {
	Results []struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"results"`
}
