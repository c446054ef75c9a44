package protocol

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/eddyrt/eddy/api"
)

// Limits of one publish, whichever way it comes in.
const (
	MaxEventLen        = 255 // bytes of an event name
	MaxPublishChannels = 100 // channels of one HTTP API publish
)

// DecodePublishBody decodes the body of POST /api/v1/publish into the
// channels, event and data to publish; CheckPublish judges them. A body
// encoding/json cannot read gets the data check's explanation when it has
// one (invalid UTF-8, nesting past MaxDataDepth, with the byte position).
func DecodePublishBody(body []byte) (channels []string, event string, data json.RawMessage, err error) {
	var req api.PublishRequest
	if err := json.Unmarshal(body, &req); err != nil {
		if derr := DiagnoseEnvelope("body", body); derr != nil {
			return nil, "", nil, derr
		}
		return nil, "", nil, Errorf(CodeBadRequest, "malformed JSON body: %v", err)
	}
	if !utf8.Valid(body) {
		// encoding/json quietly turns invalid UTF-8 in a string into U+FFFD
		// (RawMessage data keeps it as is): refuse it instead, saying where.
		if err := DiagnoseEnvelope("body", body); err != nil {
			return nil, "", nil, err
		}
	}
	channels = req.Channels
	if req.Channel != "" {
		if len(channels) > 0 {
			return nil, "", nil, Errorf(CodeBadRequest, "give channel or channels, not both")
		}
		channels = []string{req.Channel}
	}
	if len(channels) > MaxPublishChannels {
		return nil, "", nil, Errorf(CodeBadRequest, "at most %d channels per publish, got %d", MaxPublishChannels, len(channels))
	}
	return channels, req.Event, req.Data, nil
}

// CheckPublish checks a publish from any entry (HTTP API or a client)
// before anything is stored: the event name, the channels (deduplicated:
// a channel named twice gets one message, not two with one id), the size
// of data and data itself (CheckData). It returns the channels to publish
// to and data compacted for framing.
func CheckPublish(channels []string, event string, data json.RawMessage, maxDataBytes int) ([]string, json.RawMessage, error) {
	if event == "" || len(event) > MaxEventLen || !utf8.ValidString(event) {
		return nil, nil, Errorf(CodeBadRequest, "event must be 1-%d characters of UTF-8", MaxEventLen)
	}
	if len(channels) == 0 {
		return nil, nil, Errorf(CodeBadRequest, "no channel given")
	}
	channels = dedupe(channels)
	for _, ch := range channels {
		if err := ValidateChannel(ch); err != nil {
			return nil, nil, err
		}
	}
	if len(data) > maxDataBytes {
		return nil, nil, Errorf(CodeTooLarge, "data is %d bytes; max_message_bytes is %d", len(data), maxDataBytes)
	}
	data, err := CompactData(data)
	if err != nil {
		return nil, nil, err
	}
	return channels, data, nil
}

// dedupe returns channels without repeats, in first-seen order. It
// allocates only when there is a repeat.
func dedupe(channels []string) []string {
	for i := 1; i < len(channels); i++ {
		for j := 0; j < i; j++ {
			if channels[i] == channels[j] {
				return dedupeSlow(channels)
			}
		}
	}
	return channels
}

func dedupeSlow(channels []string) []string {
	seen := make(map[string]struct{}, len(channels))
	out := make([]string, 0, len(channels))
	for _, ch := range channels {
		if _, ok := seen[ch]; !ok {
			seen[ch] = struct{}{}
			out = append(out, ch)
		}
	}
	return out
}
