package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/eddyrt/eddy/internal/protocol"
)

// publishBody is one publish as the HTTP API receives it: the body of
// POST /api/v1/publish, or one item of a batch. data is a slice of the
// request body, not yet validated: publishAt checks it, once.
type publishBody struct {
	channel  string
	channels []string
	hasList  bool // "channels" was given (even empty)
	event    string
	data     []byte
}

// decodeCheckedPublishBody is decodePublishBody with the envelope's faults
// explained as the data check explains them: invalid UTF-8 anywhere in the
// body (a string decoder would quietly turn it into U+FFFD) or nesting past
// protocol.MaxDataDepth, with the byte position. what names b ("body",
// "item 3").
func decodeCheckedPublishBody(what string, b []byte) (publishBody, error) {
	p, err := decodePublishBody(b)
	if err != nil || !utf8.ValidString(p.event) || !utf8.ValidString(p.channel) {
		if derr := protocol.DiagnoseEnvelope(what, b); derr != nil {
			return p, derr
		}
	}
	return p, err
}

// readPublishBody reads and decodes the body of a single publish (the
// HTTP API's, the console's test publish). The envelope around data gets
// 4 KiB of slack over max_message_bytes.
func (s *Server) readPublishBody(r *http.Request) (publishBody, error) {
	body, err := readBody(r, int64(s.cfg.MaxMessageBytes)+4096)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			err = protocol.Errorf(protocol.CodeTooLarge, "body over max_message_bytes (%d)", s.cfg.MaxMessageBytes)
		}
		return publishBody{}, err
	}
	return decodeCheckedPublishBody("body", body)
}

// targets returns the channels a single publish names: "channel" or
// "channels", not both, at most protocol.MaxPublishChannels.
func (p publishBody) targets() ([]string, error) {
	channels := p.channels
	if p.channel != "" {
		if len(channels) > 0 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "give channel or channels, not both")
		}
		channels = []string{p.channel}
	}
	if len(channels) > protocol.MaxPublishChannels {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "at most %d channels per publish, got %d", protocol.MaxPublishChannels, len(channels))
	}
	return channels, nil
}

// decodePublishBody reads a publish object. It walks the object once by
// hand instead of through encoding/json: the reflection decoder checked the
// whole body, decoded it, copied data, and the publish then checked data
// again. Here only the envelope is parsed; data is located (its extent
// found) and checked in exactly one place, publishAt's CompactData.
func decodePublishBody(b []byte) (publishBody, error) {
	var p publishBody
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return p, bodyError("expected a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return p, trailing(b, i+1)
	}
	for {
		key, next, err := readString(b, i)
		if err != nil {
			return p, err
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return p, bodyError("expected ':' after a key")
		}
		i = skipSpace(b, i+1)
		start := i
		switch key {
		case "channel":
			p.channel, i, err = readString(b, i)
		case "event":
			p.event, i, err = readString(b, i)
		case "channels":
			p.hasList = true
			p.channels, i, err = readStrings(b, i)
		case "data":
			if p.data != nil && !json.Valid(p.data) {
				return p, bodyError("data is not valid JSON")
			}
			i, err = skipValue(b, i)
			p.data = b[start:i]
		default:
			// Unknown keys are ignored, as before, but must still be JSON.
			if i, err = skipValue(b, i); err == nil && !json.Valid(b[start:i]) {
				err = bodyError(fmt.Sprintf("value of %q is not valid JSON", key))
			}
		}
		if err != nil {
			return p, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return p, bodyError("unexpected end of JSON")
		}
		if b[i] == '}' {
			return p, trailing(b, i+1)
		}
		if b[i] != ',' {
			return p, bodyError(fmt.Sprintf("unexpected %q after a value", b[i]))
		}
		i = skipSpace(b, i+1)
	}
}

func bodyError(msg string) error {
	return protocol.Errorf(protocol.CodeBadRequest, "malformed JSON body: %s", msg)
}

func trailing(b []byte, i int) error {
	if i = skipSpace(b, i); i != len(b) {
		return bodyError("data after the top-level value")
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// readString reads the JSON string at b[i]. Strings without escapes (every
// valid channel name, most events) are sliced without decoding; the rest go
// through encoding/json, which knows every escape.
func readString(b []byte, i int) (string, int, error) {
	if i >= len(b) || b[i] != '"' {
		return "", i, bodyError("expected a string")
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, nil
		case c == '\\':
			end, err := skipString(b, i)
			if err != nil {
				return "", i, err
			}
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return "", i, bodyError(err.Error())
			}
			return s, end, nil
		case c < 0x20:
			return "", i, bodyError("control character in a string")
		}
	}
	return "", i, bodyError("unterminated string")
}

// readStrings reads a JSON array of strings (or null).
func readStrings(b []byte, i int) ([]string, int, error) {
	if hasPrefixAt(b, i, "null") {
		return nil, i + 4, nil
	}
	if i >= len(b) || b[i] != '[' {
		return nil, i, bodyError("channels must be an array of strings")
	}
	var out []string
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, i + 1, nil
	}
	for {
		s, next, err := readString(b, i)
		if err != nil {
			return nil, i, bodyError("channels must be an array of strings")
		}
		out = append(out, s)
		i = skipSpace(b, next)
		if i >= len(b) {
			return nil, i, bodyError("unexpected end of JSON")
		}
		if b[i] == ']' {
			return out, i + 1, nil
		}
		if b[i] != ',' {
			return nil, i, bodyError("channels must be an array of strings")
		}
		i = skipSpace(b, i+1)
	}
}

func hasPrefixAt(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return i, bodyError("unterminated string")
}

// maxSkipDepth bounds nesting while locating a value, so a body of
// brackets cannot make the walk expensive; deeper data is refused.
const maxSkipDepth = 10000

// skipValue returns the index just past the JSON value starting at b[i]. It
// finds the value's extent by its strings and brackets only: whether the
// value is valid JSON is checked once by the caller (publishAt for data).
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, bodyError("expected a value")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		// The open brackets, so that a mismatched one is an error here
		// rather than a value that silently swallows its neighbours.
		var buf [64]byte
		open := buf[:0]
		for j := i; j < len(b); j++ {
			switch c := b[j]; c {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return i, err
				}
				j = end - 1
			case '{', '[':
				if len(open) == maxSkipDepth {
					return i, bodyError("value nested too deeply")
				}
				open = append(open, c)
			case '}', ']':
				want := byte('{')
				if c == ']' {
					want = '['
				}
				if open[len(open)-1] != want {
					return i, bodyError(fmt.Sprintf("mismatched %q", c))
				}
				open = open[:len(open)-1]
				if len(open) == 0 {
					return j + 1, nil
				}
			}
		}
		return i, bodyError("unexpected end of JSON")
	case '}', ']', ',', ':':
		return i, bodyError(fmt.Sprintf("expected a value, found %q", b[i]))
	}
	// A number, true, false or null: up to the next delimiter.
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			return j, nil
		}
		j++
	}
	return j, nil
}

// errBodyTooLarge is readBody's answer to a body over its limit.
var errBodyTooLarge = errors.New("body too large")

// readBody reads a request body of at most limit bytes. A body whose
// length is announced is read into one buffer of that size, instead of
// the growing copies of io.ReadAll.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if n := r.ContentLength; n >= 0 {
		if n > limit {
			return nil, errBodyTooLarge
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "read body: %v", err)
		}
		return b, nil
	}
	// Read one byte past the limit to tell "too large" from "exactly at it".
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "read body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, errBodyTooLarge
	}
	return b, nil
}
