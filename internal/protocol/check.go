package protocol

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxDataDepth is how deeply arrays and objects may nest in published data
// (and in a token's info claim). Every consumer of data (functions'
// JSON.parse and JSON.stringify, encoding/json in clients, browsers) works
// recursively, and the cost of some grows with depth squared; real messages
// nest a handful of levels.
const MaxDataDepth = 64

// CheckData checks published data in one pass, without allocating unless
// it fails: JSON syntax, valid UTF-8 (data is copied verbatim into text
// frames, which a WebSocket may not send otherwise), nesting no deeper than
// MaxDataDepth, and finite numbers (1e999 is valid JSON, but no client can
// represent it). The error is a bad_request naming the byte offset in data.
func CheckData(data []byte) error {
	_, err := checkJSON(data, "data", false)
	return err
}

// CheckField is CheckData for a JSON value that is not message data (a
// token's info claim): the error names field instead of "data".
func CheckField(field string, value []byte) error {
	_, err := checkJSON(value, field, false)
	return err
}

// DiagnoseEnvelope explains why a frame or request body (what: "frame" or
// "body") that encoding/json refused is bad, when the reason is one the
// data checks know: invalid UTF-8, nesting, a non-finite number. An error
// inside the top-level "data" member names data and the offset within it,
// as CheckData would; elsewhere it names what and the offset in b. It
// returns nil when it finds nothing to add (then the decoder's own error
// says it best). encoding/json stops at 10,000 levels with a message that
// does not name Eddy's limit; this one does.
func DiagnoseEnvelope(what string, b []byte) error {
	_, err := checkJSON(b, what, true)
	return err
}

// maxStack bounds the scanner's container stack: data's own levels plus
// the envelope around it.
const maxStack = MaxDataDepth + 1

// checkJSON scans one JSON value. ws reports insignificant white space
// (the value needs compacting). With envelope set, the value is a frame or
// body whose top-level "data" member is judged as data: its errors are
// reported relative to its start and its depth counted from it.
func checkJSON(b []byte, what string, envelope bool) (ws bool, err error) {
	var (
		stack     [maxStack + 1]bool // true: object
		depth     int
		i         int
		dataStart = -1 // offset of the envelope's data value, while inside it
		nextData  bool // the envelope key just read is "data"
		limit     = MaxDataDepth
	)
	if envelope {
		limit = MaxDataDepth + 1
	}
	fail := func(pos int, reason string) error {
		if dataStart >= 0 {
			return Errorf(CodeBadRequest, "data: %s at byte %d", reason, pos-dataStart)
		}
		return Errorf(CodeBadRequest, "%s: %s at byte %d", what, reason, pos)
	}
	skip := func() {
		for i < len(b) {
			switch b[i] {
			case ' ', '\t', '\n', '\r':
				ws = true
				i++
				continue
			}
			return
		}
	}

value:
	skip()
	if i >= len(b) {
		return ws, fail(i, "unexpected end of JSON")
	}
	if nextData {
		nextData = false
		dataStart = i
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		if depth >= limit {
			if dataStart >= 0 || !envelope {
				return ws, fail(i, "nested deeper than "+strconv.Itoa(MaxDataDepth)+" levels (the limit)")
			}
			return ws, fail(i, "nested deeper than "+strconv.Itoa(limit)+" levels (the limit)")
		}
		depth++
		stack[depth] = c == '{'
		i++
		skip()
		if i < len(b) && (b[i] == '}' && c == '{' || b[i] == ']' && c == '[') {
			i++
			depth--
			goto after
		}
		if c == '{' {
			goto key
		}
		goto value
	case c == '"':
		if i, err = scanString(b, i, fail); err != nil {
			return ws, err
		}
	case c == '-' || c >= '0' && c <= '9':
		if i, err = scanNumber(b, i, fail); err != nil {
			return ws, err
		}
	case c == 't':
		if i, err = scanLiteral(b, i, "true", fail); err != nil {
			return ws, err
		}
	case c == 'f':
		if i, err = scanLiteral(b, i, "false", fail); err != nil {
			return ws, err
		}
	case c == 'n':
		if i, err = scanLiteral(b, i, "null", fail); err != nil {
			return ws, err
		}
	default:
		return ws, fail(i, "unexpected "+describeByte(b, i))
	}

after:
	// A value ended at depth: the envelope's data member ends with it.
	if dataStart >= 0 && depth == 1 {
		dataStart = -1
	}
	skip()
	if depth == 0 {
		if i != len(b) {
			return ws, fail(i, "unexpected "+describeByte(b, i)+" after the JSON value")
		}
		return ws, nil
	}
	if i >= len(b) {
		return ws, fail(i, "unexpected end of JSON")
	}
	switch c := b[i]; {
	case c == ',':
		i++
		if stack[depth] {
			skip()
			goto key
		}
		goto value
	case c == '}' && stack[depth], c == ']' && !stack[depth]:
		i++
		depth--
		goto after
	default:
		want := "',' or ']'"
		if stack[depth] {
			want = "',' or '}'"
		}
		return ws, fail(i, "unexpected "+describeByte(b, i)+", want "+want)
	}

key:
	if i >= len(b) || b[i] != '"' {
		if i >= len(b) {
			return ws, fail(i, "unexpected end of JSON")
		}
		return ws, fail(i, "unexpected "+describeByte(b, i)+", want a string key")
	}
	start := i
	if i, err = scanString(b, i, fail); err != nil {
		return ws, err
	}
	if envelope && depth == 1 && string(b[start:i]) == `"data"` {
		nextData = true
	}
	skip()
	if i >= len(b) || b[i] != ':' {
		if i >= len(b) {
			return ws, fail(i, "unexpected end of JSON")
		}
		return ws, fail(i, "unexpected "+describeByte(b, i)+", want ':'")
	}
	i++
	goto value
}

// scanString scans the string starting at the quote at b[i] and returns
// the offset after its closing quote.
func scanString(b []byte, i int, fail func(int, string) error) (int, error) {
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return i, fail(i, "unexpected end of JSON")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						return k, fail(k, "unexpected end of JSON")
					}
					if !isHex(b[k]) {
						return k, fail(k, "invalid \\u escape")
					}
				}
				i += 6
			default:
				return i, fail(i, "invalid escape")
			}
		case c < 0x20:
			return i, fail(i, "control character in string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, fail(i, "invalid UTF-8")
			}
			i += size
		}
	}
	return i, fail(i, "unexpected end of JSON")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber scans the number at b[i] by JSON's grammar and refuses one
// too large for a float64. Only numbers with an exponent or hundreds of
// digits can be, so only those are parsed.
func scanNumber(b []byte, i int, fail func(int, string) error) (int, error) {
	start := i
	digits := func() bool {
		k := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > k
	}
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		return i, fail(i, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return i, fail(i, "invalid number")
		}
	}
	exp := false
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		exp = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return i, fail(i, "invalid number")
		}
	}
	if exp || i-start > 300 {
		// string() allocates, but only for numbers written with an exponent.
		f, _ := strconv.ParseFloat(string(b[start:i]), 64)
		if math.IsInf(f, 0) {
			return start, fail(start, "number "+abbreviate(b[start:i])+" is out of range (not finite)")
		}
	}
	return i, nil
}

func scanLiteral(b []byte, i int, lit string, fail func(int, string) error) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, fail(i, "unexpected "+describeByte(b, i))
	}
	return i + len(lit), nil
}

// describeByte names b[i] for an error message, readably and as valid text.
func describeByte(b []byte, i int) string {
	c := b[i]
	if c >= 0x20 && c < 0x7f {
		return "character " + strconv.QuoteRune(rune(c))
	}
	return "byte 0x" + strconv.FormatUint(uint64(c), 16)
}

// abbreviate quotes a number for a message, shortened past 40 characters.
func abbreviate(num []byte) string {
	if len(num) > 40 {
		return string(num[:20]) + "..." + string(num[len(num)-10:])
	}
	return string(num)
}
