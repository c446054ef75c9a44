package protocol

import "strconv"

// The errors a client sees for faults that are not its own: a stable code
// and a fixed message. Their cause (a Redis address, a Go error's text)
// goes to the server's log, never to a client. Clients and tests may
// compare against these messages.
var (
	ErrInternal    = &Error{Code: CodeInternal, Message: "internal server error"}
	ErrUnavailable = &Error{Code: CodeUnavailable, Message: "broker unavailable, retry later"}
	// ErrOutcomeUnknown answers a publish the broker was sent but did not
	// confirm: it may have been published.
	ErrOutcomeUnknown = &Error{Code: CodeUnavailable, Message: "the broker did not confirm the publish: it may have been published, and publishing again may duplicate it"}
	ErrShuttingDown   = &Error{Code: CodeUnavailable, Message: "server is shutting down"}
)

// Disconnect is why the server closes a connection: the close code and the
// reason sent with it travel together, so a code is never sent with
// another's reason.
type Disconnect struct {
	Code   uint16
	Reason string
}

// The server's disconnects; docs/protocol.md lists the codes.
var (
	DisconnectShutdown      = Disconnect{CloseServiceRestart, "server restarting: reconnect"}
	DisconnectPingTimeout   = Disconnect{CloseGoingAway, "ping timeout"}
	DisconnectUnauthorized  = Disconnect{CloseUnauthorized, "unauthorized"}
	DisconnectTooManyErrors = Disconnect{CloseTooManyErrors, "too many bad frames"}
	DisconnectTokenExpired  = Disconnect{CloseTokenExpired, "token expired"}
	DisconnectAuthTimeout   = Disconnect{CloseAuthTimeout, "auth timeout"}
	DisconnectSlowConsumer  = Disconnect{CloseSlowConsumer, "slow consumer"}
	DisconnectTooManyConns  = Disconnect{CloseTooManyConnections, "too many connections"}
	DisconnectInvalidText   = Disconnect{CloseInvalidText, "text frame is not valid UTF-8"}
	DisconnectAppDeleted    = Disconnect{CloseAppDeleted, "app deleted"}
)

// Label is the close code as a metric label.
func (d Disconnect) Label() string { return strconv.Itoa(int(d.Code)) }

func (d Disconnect) String() string { return d.Label() + " " + d.Reason }
