// Package wsframe decodes what a WebSocket client sends a server (RFC 6455
// frames, without extensions) from bytes already read, so a connection can
// be read only when bytes wait instead of by a goroutine blocked in a read.
// It does no I/O and holds no buffer of its own between messages: the caller
// hands it the bytes it has, and it decodes the complete frames among them.
//
// Its checks and the close codes it fails a connection with follow what
// github.com/lxzan/gws v1.8.9 does for a server without permessage-deflate
// and without UTF-8 checks (the server checks text messages itself), so a
// connection read either way behaves the same.
package wsframe

import (
	"encoding/binary"
	"strconv"
)

// Opcode is a frame's opcode.
type Opcode byte

// The opcodes of RFC 6455 section 5.2.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// Close codes the decoder fails a connection with.
const (
	CloseNormal          uint16 = 1000
	CloseProtocolError   uint16 = 1002
	CloseMessageTooLarge uint16 = 1009
)

// maxControlPayload is the longest payload a control frame may carry.
const maxControlPayload = 125

// Error says how to fail the connection: the close frame to send, with
// Code and Reason, as gws would send it.
type Error struct {
	Code   uint16
	Reason string
}

func (e *Error) Error() string {
	return "websocket: close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// The errors the decoder returns are values, so failing a connection
// allocates nothing. Their reasons are gws's.
var (
	errProtocol = &Error{Code: CloseProtocolError, Reason: "gws: protocol error"}
	errTooLarge = &Error{Code: CloseMessageTooLarge, Reason: "gws: message too large"}
)

// errOpcode is the error for a frame with a reserved opcode.
func errOpcode(op Opcode) *Error {
	return &Error{Code: CloseProtocolError, Reason: "gws: unexpected opcode " + strconv.Itoa(int(op))}
}

// Kind is what a decoded frame means to the connection.
type Kind uint8

const (
	// None: a fragment of a message that is not complete yet.
	None Kind = iota
	// Message: a complete text or binary message (Event.Op says which).
	Message
	// Ping, Pong and Close are control frames.
	Ping
	Pong
	Close
)

// Event is one decoded frame's meaning. Payload is valid until the next
// call of Next: it points into the bytes Next was given (unmasked in place)
// or into the decoder's message being assembled.
type Event struct {
	Kind    Kind
	Op      Opcode // the message's opcode (text or binary), for Message
	Payload []byte
}

// Decoder decodes one client connection's frames, in order. Between
// messages it holds nothing but its limit; a fragmented message holds the
// fragments received so far.
type Decoder struct {
	// MaxPayload bounds a frame's payload and a fragmented message's
	// total: more fails the connection with 1009 (gws's
	// ReadMaxPayloadSize).
	MaxPayload int

	op   Opcode // the fragmented message in progress; 0: none
	frag []byte // its payload so far
}

// HeaderSize returns the size of the frame header at the start of b, or 0
// when b does not hold enough of it to tell.
func HeaderSize(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	if len(b) < n {
		return 0
	}
	return n
}

// Next decodes the first frame of b. It returns n, the bytes that frame
// took, and what it means; n is 0 when b does not hold the whole frame yet,
// and need then says how many bytes it takes in all (0: its header is not
// complete, so the size is not known yet). err, an *Error, says the
// connection must fail: as soon as the header shows it for what gws
// checks in the header (size, reserved bits, mask, a control frame's
// size and fragmentation), once the frame is complete for the rest.
// Next unmasks the frame's payload in b.
func (d *Decoder) Next(b []byte) (ev Event, n, need int, err error) {
	hs := HeaderSize(b)
	if hs == 0 {
		return Event{}, 0, 0, nil
	}
	fin := b[0]&0x80 != 0
	rsv := b[0] & 0x70
	op := Opcode(b[0] & 0x0f)
	masked := b[1]&0x80 != 0
	code := b[1] & 0x7f
	var length uint64
	switch code {
	case 126:
		length = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(b[2:10])
	default:
		length = uint64(code)
	}
	// The order of the checks is gws's, so a frame wrong in several ways
	// closes with the same code.
	// A 64-bit length must have its top bit clear; gws reads it as a
	// negative int, which passes its size check.
	badLength := length>>63 != 0
	if length > uint64(d.MaxPayload) && !badLength {
		return Event{}, 0, 0, errTooLarge
	}
	if rsv != 0 || !masked {
		return Event{}, 0, 0, errProtocol
	}
	control := op > OpBinary
	if control && (!fin || code > maxControlPayload) || badLength {
		return Event{}, 0, 0, errProtocol
	}
	total := hs + int(length)
	if len(b) < total {
		return Event{}, 0, total, nil
	}
	// gws checks the order of data frames once it has read the payload.
	if (op == OpText || op == OpBinary) && d.op != 0 {
		// A new message while a fragmented one is unfinished.
		return Event{}, 0, 0, errProtocol
	}
	if op == OpContinuation && d.op == 0 {
		return Event{}, 0, 0, errProtocol
	}
	payload := b[hs:total]
	maskBytes(payload, b[hs-4:hs])
	switch op {
	case OpPing:
		return Event{Kind: Ping, Payload: payload}, total, 0, nil
	case OpPong:
		return Event{Kind: Pong, Payload: payload}, total, 0, nil
	case OpClose:
		return Event{Kind: Close, Payload: payload}, total, 0, nil
	case OpText, OpBinary:
		if fin {
			return Event{Kind: Message, Op: op, Payload: payload}, total, 0, nil
		}
		d.op = op
		d.frag = append(make([]byte, 0, len(payload)), payload...)
		return Event{}, total, 0, nil
	case OpContinuation:
		if len(d.frag)+len(payload) > d.MaxPayload {
			return Event{}, 0, 0, errTooLarge
		}
		d.frag = append(d.frag, payload...)
		if !fin {
			return Event{}, total, 0, nil
		}
		ev = Event{Kind: Message, Op: d.op, Payload: d.frag}
		d.op, d.frag = 0, nil
		return ev, total, 0, nil
	}
	return Event{}, 0, 0, errOpcode(op)
}

// Fragmented reports whether a fragmented message is unfinished.
func (d *Decoder) Fragmented() bool { return d.op != 0 }

// CloseReply returns the status code to answer a client's close frame
// with, given its payload; 0 means an empty close frame. As gws does, a
// valid code from 1000 to 1015 is answered with 1000, a code from 3000 to
// 4999 with itself, and anything else (a one-byte payload, a reserved or
// unknown code) with 1002. The reason is not checked for UTF-8 (gws does
// not with its UTF-8 checks off, as the server runs it).
func CloseReply(payload []byte) uint16 {
	switch len(payload) {
	case 0:
		return 0
	case 1:
		return CloseProtocolError
	}
	code := binary.BigEndian.Uint16(payload)
	switch {
	case code == 1004 || code == 1005 || code == 1006 || code == 1014 || code == 1015:
		return CloseProtocolError
	case code < 1000 || code >= 5000 || (code >= 1016 && code < 3000):
		return CloseProtocolError
	case code < 1016:
		return CloseNormal
	}
	return code
}
