package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/eddyrt/eddy/api"
)

// maxBatchLine bounds one line of a --batch file: a message's data is at
// most max_message_bytes (64 KiB by default) plus its envelope.
const maxBatchLine = 16 << 20

// publishBatchFile publishes each line of path (a JSON object with channel,
// event and data) through the batch API, size lines per request, and prints
// one result per line, in order. Every line is read and checked before
// anything is sent, so a malformed file publishes nothing. It fails when any
// message was refused, after printing all results.
func publishBatchFile(cmd *cobra.Command, c *api.Client, path string, size int) error {
	if size < 1 {
		return fmt.Errorf("--batch-size must be at least 1, got %d", size)
	}
	var in io.Reader = cmd.InOrStdin()
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("--batch: %w", err)
		}
		defer f.Close()
		in = f
	}
	var msgs []api.BatchMessage
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxBatchLine)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var m api.BatchMessage
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("%s line %d: want {\"channel\":..,\"event\":..,\"data\":..}: %v", path, line, err)
		}
		if dec.More() {
			return fmt.Errorf("%s line %d: more than one JSON value", path, line)
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if len(msgs) == 0 {
		return fmt.Errorf("%s holds no messages", path)
	}
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	refused := 0
	for start := 0; start < len(msgs); start += size {
		chunk := msgs[start:min(start+size, len(msgs))]
		results, err := c.Batch(cmd.Context(), chunk)
		if err != nil {
			_ = out.Flush()
			return fmt.Errorf("messages %d-%d (the messages before them were published): %w", start+1, start+len(chunk), err)
		}
		for _, r := range results {
			if r.Error != nil {
				refused++
			}
			b, _ := json.Marshal(r)
			out.Write(append(b, '\n'))
		}
	}
	if refused > 0 {
		return fmt.Errorf("%d of %d messages were refused (see their results)", refused, len(msgs))
	}
	return nil
}
