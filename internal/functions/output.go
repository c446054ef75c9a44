package functions

import (
	"fmt"
	"unicode/utf8"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/protocol"
)

// checkOutput holds what a function hands back to the rules a publisher's
// message is held to (see protocol.CheckData): its data and events become
// part of every subscriber's text frames. Output that breaks them is the
// function's failure, handled by on_error and counted as one, never the
// publisher's fault. in is the message the function was given: data handed
// back unchanged was checked on the way in.
func checkOutput(in Message, res fnrt.Result) error {
	if res.Action == fnrt.Pass {
		if err := checkOutMessage(in, res.Message); err != nil {
			return fmt.Errorf("returned message.%w", err)
		}
	}
	for i, p := range res.Publish {
		if err := checkOutMessage(in, p); err != nil {
			return fmt.Errorf("ctx.publish #%d: %w", i+1, err)
		}
	}
	return nil
}

func checkOutMessage(in, m Message) error {
	if !utf8.ValidString(m.Event) {
		return fmt.Errorf("event is not valid UTF-8")
	}
	if len(m.Data) == 0 || string(m.Data) == string(in.Data) {
		return nil
	}
	if err := protocol.CheckData(m.Data); err != nil {
		return fmt.Errorf("%s", protocol.AsError(err).Message)
	}
	return nil
}
