package protocol

import (
	"encoding/json"
	"unicode/utf8"
)

// Limits of one publish, whichever way it comes in.
const (
	MaxEventLen        = 255 // bytes of an event name
	MaxPublishChannels = 100 // channels of one HTTP API publish
)

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
