package functions

import (
	"fmt"
	"unicode/utf8"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// checkOutput holds the events a function hands back to the rules a
// publisher's event is held to: they become part of every subscriber's text
// frames. (Its data goes through Options.ValidData, the publish path's data
// check, in Engine.checkOutput.) Output that breaks them is the function's
// failure, handled by on_error and counted as one, never the publisher's
// fault.
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
	if m.Event != in.Event && !utf8.ValidString(m.Event) {
		return fmt.Errorf("%w: event is not valid UTF-8", ErrInvalidOutput)
	}
	return nil
}
