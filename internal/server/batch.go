package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/eddyrt/eddy/internal/protocol"
)

// POST /api/v1/batch publishes many messages, each to its own channel, in
// one request. Each item goes through the same path as a single publish
// (validation, functions, broker); items are published one after another
// in the order given, so items of one channel keep their order. The answer
// has one result per item, in order: an item refused (bad channel, too
// large, rejected by a function) is reported in its place and the others
// are still published.

// batchBodyLimit bounds a batch's body: max_batch items of at most
// max_message_bytes each would let one request hold gigabytes, so the body
// as a whole gets the room of 16 full messages, or 1 KiB per item, whichever
// is more.
func (s *Server) batchBodyLimit() int64 {
	per := int64(s.cfg.MaxMessageBytes) + 4096
	return max(16*per, int64(s.cfg.MaxBatch)*1024+per)
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	limit := s.batchBodyLimit()
	body, err := readBody(r, limit)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			err = protocol.Errorf(protocol.CodeTooLarge, "batch body over %d bytes (16 x max_message_bytes, or 1 KiB per max_batch item): split it", limit)
		}
		s.writeError(w, err)
		return
	}
	items, err := splitBatch(body, s.cfg.MaxBatch)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if s.draining.Load() {
		s.writeError(w, &protocol.Error{Code: protocol.CodeUnavailable, Message: "server is shutting down"})
		return
	}
	out := make([]byte, 0, 16+len(items)*40)
	out = append(out, `{"results":[`...)
	var channel [1]string
	for i, item := range items {
		if i > 0 {
			out = append(out, ',')
		}
		id, offset, err := s.publishItem(r, item, channel[:])
		if err != nil {
			pe := protocol.AsError(err)
			s.metrics.errorsFor(pe.Code).Inc()
			out = appendItemError(out, pe)
			continue
		}
		out = append(out, `{"id":`...)
		out = protocol.AppendString(out, id)
		if offset > 0 {
			out = append(out, `,"offset":`...)
			out = strconv.AppendUint(out, offset, 10)
		}
		out = append(out, '}')
	}
	out = append(out, "]}\n"...)
	writeJSONBytes(w, http.StatusOK, out)
}

// publishItem publishes one batch item; channel is scratch for its one
// channel name.
func (s *Server) publishItem(r *http.Request, item []byte, channel []string) (string, uint64, error) {
	req, err := decodeCheckedPublishBody("item", item)
	if err != nil {
		return "", 0, err
	}
	if req.hasList {
		return "", 0, protocol.Errorf(protocol.CodeBadRequest, "a batch item takes one channel, not channels")
	}
	if req.channel == "" {
		return "", 0, protocol.Errorf(protocol.CodeBadRequest, "no channel given")
	}
	if len(req.data) > s.cfg.MaxMessageBytes {
		return "", 0, protocol.Errorf(protocol.CodeTooLarge, "data is %d bytes; max_message_bytes is %d", len(req.data), s.cfg.MaxMessageBytes)
	}
	channel[0] = req.channel
	return s.publishAt(r.Context(), publishRequest{channels: channel, event: req.event, data: req.data, source: "api", app: s.appOf(r.Context())})
}

func appendItemError(b []byte, pe *protocol.Error) []byte {
	b = append(b, `{"error":{"code":`...)
	b = protocol.AppendString(b, pe.Code)
	b = append(b, `,"message":`...)
	b = protocol.AppendString(b, pe.Message)
	return append(b, "}}"...)
}

// splitBatch finds the items of {"messages":[...]}: each is located, not
// decoded, so one malformed item is reported in its place. More than maxItems
// items is refused as a whole, before anything is published.
func splitBatch(b []byte, maxItems int) ([][]byte, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, bodyError(`expected {"messages":[...]}`)
	}
	var items [][]byte
	seen := false
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			key, next, err := readString(b, i)
			if err != nil {
				return nil, err
			}
			i = skipSpace(b, next)
			if i >= len(b) || b[i] != ':' {
				return nil, bodyError("expected ':' after a key")
			}
			i = skipSpace(b, i+1)
			if key == "messages" {
				if items, i, err = splitItems(b, i, maxItems); err != nil {
					return nil, err
				}
				seen = true
			} else {
				start := i
				if i, err = skipValue(b, i); err != nil {
					return nil, err
				}
				if !json.Valid(b[start:i]) {
					return nil, bodyError(fmt.Sprintf("value of %q is not valid JSON", key))
				}
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return nil, bodyError("unexpected end of JSON")
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return nil, bodyError(fmt.Sprintf("unexpected %q after a value", b[i]))
			}
			i = skipSpace(b, i+1)
		}
	}
	if err := trailing(b, i); err != nil {
		return nil, err
	}
	if !seen {
		return nil, protocol.Errorf(protocol.CodeBadRequest, `batch has no "messages" array`)
	}
	if len(items) == 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "batch has no messages")
	}
	return items, nil
}

// splitItems locates the elements of the array at b[i].
func splitItems(b []byte, i, maxItems int) ([][]byte, int, error) {
	if i >= len(b) || b[i] != '[' {
		return nil, i, bodyError(`"messages" must be an array`)
	}
	var items [][]byte
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return items, i + 1, nil
	}
	for {
		start := i
		end, err := skipValue(b, i)
		if err != nil {
			return nil, i, err
		}
		if len(items) == maxItems {
			return nil, i, protocol.Errorf(protocol.CodeTooLarge, "batch has more than max_batch (%d) messages: split it", maxItems)
		}
		items = append(items, b[start:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return nil, i, bodyError("unexpected end of JSON")
		}
		if b[i] == ']' {
			return items, i + 1, nil
		}
		if b[i] != ',' {
			return nil, i, bodyError(fmt.Sprintf("unexpected %q between batch messages", b[i]))
		}
		i = skipSpace(b, i+1)
	}
}
