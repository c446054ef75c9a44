package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Pipeline adapts an Engine to the server's publish path: it speaks
// protocol messages and protocol errors.
type Pipeline struct{ Engine *Engine }

// Touches reports whether Apply may change or refuse a message of channel
// (see Engine.Touches).
func (p Pipeline) Touches(channel string) bool { return p.Engine.Touches(channel) }

// Apply runs m through the engine. Messages functions emit get their own
// ids from the server; a changed original keeps m's id.
func (p Pipeline) Apply(ctx context.Context, m *protocol.Message, info json.RawMessage) ([]*protocol.Message, error) {
	out, err := p.Engine.Apply(ctx, Message{Channel: m.Channel, Event: m.Event, Data: m.Data, User: m.User, Info: info, TS: m.TS})
	if err != nil {
		var rej *RejectedError
		var bad *BadRequestError
		var busy *UnavailableError
		switch {
		case errors.As(err, &busy):
			return nil, &protocol.Error{Code: protocol.CodeUnavailable, Message: busy.Error()}
		case errors.As(err, &rej):
			return nil, &protocol.Error{Code: protocol.CodeRejected, Message: rej.Reason}
		case errors.As(err, &bad):
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: bad.Error()}
		}
		// Not for clients' eyes: the server shows the fixed internal error
		// and logs this.
		return nil, fmt.Errorf("functions: %w", err)
	}
	if len(out) == 1 && out[0].Channel == m.Channel && out[0].Event == m.Event && string(out[0].Data) == string(m.Data) {
		return []*protocol.Message{m}, nil // untouched: the common, cheap case
	}
	msgs := make([]*protocol.Message, 0, len(out))
	for i, o := range out {
		data, err := protocol.CompactData(o.Data)
		if err != nil {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "a function returned invalid data: " + err.Error()}
		}
		pm := &protocol.Message{Channel: o.Channel, Event: o.Event, Data: data, User: o.User, TS: m.TS}
		// The first output is the original unless the original was dropped
		// and only emitted messages remain: same channel and user tells.
		if i == 0 && o.Channel == m.Channel && o.User == m.User {
			pm.ID = m.ID
		}
		msgs = append(msgs, pm)
	}
	return msgs, nil
}
