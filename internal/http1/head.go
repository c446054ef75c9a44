// Package http1 reads the head of a plain HTTP/1.1 request (request line
// and header fields) from bytes already buffered, without allocating, for
// the API's keep-alive fast path. It accepts only the common, unambiguous
// form of a request; anything else (another HTTP version, chunked or
// doubled framing, Expect, folded lines, a bare LF, an odd character) is
// reported as Unsupported so the caller can leave the request, unread, to
// net/http's complete parser. Being stricter than net/http, never looser,
// is what keeps the two from framing one byte stream differently.
package http1

import (
	"bytes"

	"golang.org/x/net/http/httpguts"
)

// Result says what Parse made of a buffer.
type Result int

const (
	// Complete: the head ends within the buffer; Head.Len bytes of it.
	Complete Result = iota
	// Incomplete: every byte so far is valid, but the head has not ended.
	Incomplete
	// Unsupported: not a request this package serves; net/http decides.
	Unsupported
)

// MaxFields bounds the header fields of a request this package accepts.
const MaxFields = 64

// Field is one header field, as slices of the parsed buffer.
type Field struct {
	Name, Value []byte
}

// Head is a parsed request head. Its slices point into the buffer given
// to Parse and are valid only as long as that buffer is.
type Head struct {
	Method, Target []byte
	// ContentLength is the body's length, -1 when the request has none
	// declared (which, without Transfer-Encoding, means an empty body).
	ContentLength int64
	// Close: the client sent Connection: close.
	Close bool
	// Fields lists every header field in order, Host and Content-Length
	// included.
	Fields  [MaxFields]Field
	NFields int
	// Len is the length of the head, its final empty line included.
	Len int
}

// Parse reads a request head from the start of buf into h.
func Parse(buf []byte, h *Head) Result {
	h.ContentLength = -1
	h.Close = false
	h.NFields = 0
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end >= 0 {
		h.Len = end + 4
		return parseLines(buf[:end+2], h, false)
	}
	// Check what is there, so garbage is handed over at once instead of
	// waiting for a head that never ends.
	if nl := bytes.LastIndexByte(buf, '\n'); nl >= 0 {
		if parseLines(buf[:nl+1], h, true) == Unsupported {
			return Unsupported
		}
	} else if !validStart(buf) {
		return Unsupported
	}
	return Incomplete
}

// validStart checks the start of a request line not yet ended.
func validStart(buf []byte) bool {
	if len(buf) == 0 {
		return true
	}
	if !isTchar(buf[0]) {
		return false
	}
	for i, c := range buf {
		if c != ' ' && !isVisible(c) && !(c == '\r' && i == len(buf)-1) {
			return false
		}
	}
	return true
}

// parseLines parses CRLF-ended lines: the request line, then fields.
// partial: the lines are a prefix of a head not yet ended.
func parseLines(b []byte, h *Head, partial bool) Result {
	line, rest, ok := cutLine(b)
	if !ok || !parseRequestLine(line, h) {
		return Unsupported
	}
	hosts, lengths := 0, 0
	for len(rest) > 0 {
		line, rest, ok = cutLine(rest)
		if !ok || h.NFields == MaxFields {
			return Unsupported
		}
		name, value, ok := splitField(line)
		if !ok {
			return Unsupported
		}
		h.Fields[h.NFields] = Field{Name: name, Value: value}
		h.NFields++
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			hosts++
			// What net/http's server refuses with a 400, it must see.
			if !httpguts.ValidHostHeader(string(value)) {
				return Unsupported
			}
		case bytes.EqualFold(name, []byte("Content-Length")):
			lengths++
			n, ok := parseLength(value)
			if !ok || lengths > 1 {
				return Unsupported
			}
			h.ContentLength = n
		case bytes.EqualFold(name, []byte("Connection")):
			closeIt, ok := parseConnection(value)
			if !ok {
				return Unsupported
			}
			h.Close = h.Close || closeIt
		case bytes.EqualFold(name, []byte("Transfer-Encoding")),
			bytes.EqualFold(name, []byte("Expect")),
			bytes.EqualFold(name, []byte("Upgrade")),
			bytes.EqualFold(name, []byte("Trailer")):
			return Unsupported
		}
	}
	if !partial && hosts != 1 {
		return Unsupported
	}
	return Complete
}

// cutLine splits off a line ended by CRLF; a bare CR or LF inside it, or
// none at its end, fails.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// parseRequestLine: method SP origin-form-target SP "HTTP/1.1".
func parseRequestLine(line []byte, h *Head) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp < 1 {
		return false
	}
	method := line[:sp]
	for _, c := range method {
		if !isTchar(c) {
			return false
		}
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp < 1 || rest[0] != '/' {
		return false
	}
	target := rest[:sp]
	for _, c := range target {
		if !isVisible(c) {
			return false
		}
	}
	if string(rest[sp+1:]) != "HTTP/1.1" {
		return false
	}
	h.Method, h.Target = method, target
	return true
}

// splitField splits "Name: value" with optional spaces or tabs around the
// value. No space before the colon, no folded continuation lines.
func splitField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon < 1 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !isTchar(c) {
			return nil, nil, false
		}
	}
	value = bytes.Trim(line[colon+1:], " \t")
	for _, c := range value {
		if c != ' ' && c != '\t' && !isVisible(c) && c < 0x80 {
			return nil, nil, false
		}
	}
	return name, value, true
}

// parseLength accepts 1 to 18 digits, nothing else.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseConnection reads a Connection field: close and keep-alive are
// understood; any other option (Upgrade, a hop-by-hop header's name) is not.
func parseConnection(v []byte) (closeIt, ok bool) {
	for len(v) > 0 {
		var opt []byte
		opt, v, _ = bytes.Cut(v, []byte(","))
		opt = bytes.Trim(opt, " \t")
		switch {
		case bytes.EqualFold(opt, []byte("close")):
			closeIt = true
		case bytes.EqualFold(opt, []byte("keep-alive")), len(opt) == 0:
		default:
			return false, false
		}
	}
	return closeIt, true
}

// isTchar: a token character (RFC 9110, section 5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// isVisible: a printable ASCII character other than space.
func isVisible(c byte) bool { return c > ' ' && c < 0x7f }
