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

// DiagnoseEnvelope says what is wrong with a frame or request body (what:
// "frame" or "body") as JSON: syntax, invalid UTF-8, nesting, a non-finite
// number, with the byte position. An error inside the top-level "data"
// member names data and the offset within it, as CheckData would; one
// elsewhere names what and the offset in b. It returns nil for sound JSON
// (a decoder's complaint about it is about types, and says that best).
// Decoders call it when encoding/json refused b, which stops at 10,000
// levels with a message that does not name Eddy's limit, and when b is not
// valid UTF-8, which encoding/json quietly turns into U+FFFD.
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
//
// It is one loop over b with the state in local variables (no closures on
// the way: they would keep the index out of registers); helpers report a
// reason, and only a failure builds an error.
func checkJSON(b []byte, what string, envelope bool) (ws bool, err error) {
	var (
		stack     [maxStack + 1]bool // true: object
		depth     int
		i         int
		dataStart = -1 // offset of the envelope's data value, while inside it
		nextData  bool // the envelope key just read is "data"
		limit     = MaxDataDepth
		reason    string
	)
	if envelope {
		limit = MaxDataDepth + 1
	}

value:
	i, ws = skipSpace(b, i, ws)
	if i >= len(b) {
		reason = "unexpected end of JSON"
		goto fail
	}
	if nextData {
		nextData = false
		dataStart = i
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		if depth >= limit {
			n := MaxDataDepth
			if dataStart < 0 && envelope {
				n = limit
			}
			reason = "nested deeper than " + strconv.Itoa(n) + " levels (the limit)"
			goto fail
		}
		depth++
		stack[depth] = c == '{'
		i++
		i, ws = skipSpace(b, i, ws)
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
		if i, reason = scanString(b, i); reason != "" {
			goto fail
		}
	case c == '-' || c >= '0' && c <= '9':
		if i, reason = scanNumber(b, i); reason != "" {
			goto fail
		}
	case c == 't':
		if i, reason = scanLiteral(b, i, "true"); reason != "" {
			goto fail
		}
	case c == 'f':
		if i, reason = scanLiteral(b, i, "false"); reason != "" {
			goto fail
		}
	case c == 'n':
		if i, reason = scanLiteral(b, i, "null"); reason != "" {
			goto fail
		}
	default:
		reason = "unexpected " + describeByte(b, i)
		goto fail
	}

after:
	// A value ended at depth: the envelope's data member ends with it.
	if dataStart >= 0 && depth == 1 {
		dataStart = -1
	}
	i, ws = skipSpace(b, i, ws)
	if depth == 0 {
		if i != len(b) {
			reason = "unexpected " + describeByte(b, i) + " after the JSON value"
			goto fail
		}
		return ws, nil
	}
	if i >= len(b) {
		reason = "unexpected end of JSON"
		goto fail
	}
	switch c := b[i]; {
	case c == ',':
		i++
		if stack[depth] {
			i, ws = skipSpace(b, i, ws)
			goto key
		}
		goto value
	case c == '}' && stack[depth], c == ']' && !stack[depth]:
		i++
		depth--
		goto after
	default:
		reason = "unexpected " + describeByte(b, i) + ", want ',' or ']'"
		if stack[depth] {
			reason = "unexpected " + describeByte(b, i) + ", want ',' or '}'"
		}
		goto fail
	}

key:
	if i >= len(b) {
		reason = "unexpected end of JSON"
		goto fail
	}
	if b[i] != '"' {
		reason = "unexpected " + describeByte(b, i) + ", want a string key"
		goto fail
	}
	if envelope && depth == 1 && len(b)-i >= 6 && string(b[i:i+6]) == `"data"` {
		nextData = true
	}
	if i, reason = scanString(b, i); reason != "" {
		goto fail
	}
	i, ws = skipSpace(b, i, ws)
	if i >= len(b) {
		reason = "unexpected end of JSON"
		goto fail
	}
	if b[i] != ':' {
		reason = "unexpected " + describeByte(b, i) + ", want ':'"
		goto fail
	}
	i++
	goto value

fail:
	if dataStart >= 0 {
		return ws, Errorf(CodeBadRequest, "data: %s at byte %d", reason, i-dataStart)
	}
	return ws, Errorf(CodeBadRequest, "%s: %s at byte %d", what, reason, i)
}

// skipSpace skips JSON white space from b[i], noting in ws that there was some.
func skipSpace(b []byte, i int, ws bool) (int, bool) {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
		ws = true
	}
	return i, ws
}

// scanString scans the string starting at the quote at b[i] and returns
// the offset after its closing quote, or where and why it is bad.
func scanString(b []byte, i int) (int, string) {
	i++
	for i < len(b) {
		// Most of a message is plain ASCII text: skip it in a tight loop.
		for i < len(b) && plainASCII[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, ""
		case c == '\\':
			if i+1 >= len(b) {
				return i + 1, "unexpected end of JSON"
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						return k, "unexpected end of JSON"
					}
					if !isHex(b[k]) {
						return k, "invalid \\u escape"
					}
				}
				i += 6
			default:
				return i, "invalid escape"
			}
		case c < 0x20:
			return i, "control character in string"
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, "invalid UTF-8"
			}
			i += size
		}
	}
	return i, "unexpected end of JSON"
}

// plainASCII marks the bytes a JSON string holds as they are: printable
// ASCII but the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber scans the number at b[i] by JSON's grammar and refuses one
// too large for a float64. Only numbers with an exponent or hundreds of
// digits can be, so only those are parsed.
func scanNumber(b []byte, i int) (int, string) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return i, "invalid number"
	}
	if i < len(b) && b[i] == '.' {
		i++
		k := i
		if i = skipDigits(b, i); i == k {
			return i, "invalid number"
		}
	}
	exp := false
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		exp = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		k := i
		if i = skipDigits(b, i); i == k {
			return i, "invalid number"
		}
	}
	if exp || i-start > 300 {
		// string() allocates, but only for numbers written with an exponent.
		f, _ := strconv.ParseFloat(string(b[start:i]), 64)
		if math.IsInf(f, 0) {
			return start, "number " + abbreviate(b[start:i]) + " is out of range (not finite)"
		}
	}
	return i, ""
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func scanLiteral(b []byte, i int, lit string) (int, string) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, "unexpected " + describeByte(b, i)
	}
	return i + len(lit), ""
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
