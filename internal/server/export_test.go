package server

import "time"

// WithWriteDelay sets a coalescing window beyond write_delay's limit, for
// tests that must tell "waited for the window" from "did not" by order.
func WithWriteDelay(o Options, d time.Duration) Options {
	o.writeDelay = d
	return o
}
