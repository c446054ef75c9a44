package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// batchPublishers returns one publish function per HTTP worker for the
// batch scenario: each call sends one POST /api/v1/batch with an item per
// channel given, and counts each item the server accepted.
func (r *runner) batchPublishers(ctx context.Context, workers int) []func([]*channel) error {
	// Buffers that hold a whole request (about 90 bytes an item) and a
	// whole answer (about 40 bytes an item), so each goes in one system call.
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true,
		WriteBufferSize: 64 << 10, ReadBufferSize: 16 << 10}
	r.batchTransport = tr
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var out []func([]*channel) error
	for i := 0; i < workers; i++ {
		url := strings.TrimRight(r.o.API[i%len(r.o.API)], "/") + "/api/v1/batch"
		var buf []byte
		var answer batchAnswer
		var body bytes.Buffer
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
			body.Reset()
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("batch: %s: %s", resp.Status, bytes.TrimSpace(body.Bytes()))
			}
			// The usual answer, every item accepted, is recognised by a
			// scan; anything else is decoded.
			if n, ok := scanBatchAnswer(body.Bytes()); ok && n == len(chs) {
				for _, ch := range chs {
					ch.sent.Add(1)
				}
				r.sentAPI.Add(uint64(n))
				return nil
			}
			answer.Results = answer.Results[:0]
			if err := json.Unmarshal(body.Bytes(), &answer); err != nil || len(answer.Results) != len(chs) {
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

var batchAnswerStart = []byte(`{"results":[`)

// scanBatchAnswer recognises the answer of a batch whose items were all
// accepted, {"results":[{"id":"…","offset":N},…]} exactly as the server
// writes it, and returns its number of items. ok is false for anything
// else (an item's error, another field, spacing): that answer is for
// encoding/json. What it accepts, encoding/json decodes to as many
// results without an error (FuzzScanBatchAnswer).
func scanBatchAnswer(b []byte) (n int, ok bool) {
	b = bytes.TrimRight(b, " \t\r\n")
	if !bytes.HasPrefix(b, batchAnswerStart) {
		return 0, false
	}
	i := len(batchAnswerStart)
	if i < len(b) && b[i] == ']' {
		return 0, string(b[i:]) == "]}"
	}
	for {
		const id, off = `{"id":"`, `,"offset":`
		if !bytes.HasPrefix(b[i:], []byte(id)) {
			return 0, false
		}
		i += len(id)
		// The id: a string without escapes or control characters.
		for i < len(b) && b[i] != '"' {
			if b[i] == '\\' || b[i] < 0x20 {
				return 0, false
			}
			i++
		}
		if i >= len(b) {
			return 0, false
		}
		i++ // the closing quote
		if bytes.HasPrefix(b[i:], []byte(off)) {
			i += len(off)
			// A JSON unsigned integer: 0, or no leading zero.
			j := i
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				i++
			}
			if i == j || b[j] == '0' && i-j > 1 {
				return 0, false
			}
		}
		if i+1 >= len(b) || b[i] != '}' {
			return 0, false
		}
		n++
		switch b[i+1] {
		case ',':
			i += 2
		case ']':
			if string(b[i+1:]) != "]}" {
				return 0, false
			}
			return n, true
		default:
			return 0, false
		}
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
