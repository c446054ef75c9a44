package protocol

// decodeFlat decodes the common shape of a client frame without
// encoding/json, whose reflection cost a tenth of the server's CPU per new
// connection (auth and subscribe frames): one object whose members are
// only "type", "token", "channel", "event" (strings of printable ASCII
// without escapes) and "id" (a plain non-negative integer), in any order,
// with JSON white space anywhere between tokens.
//
// It reports false for anything else (other members, escapes, non-ASCII,
// data, since, null, malformed input...), leaving f unspecified: the
// caller then decodes with encoding/json. When it reports true, f is what
// json.Unmarshal would have made of b (FuzzDecodeFlat checks this).
func decodeFlat(b []byte, f *ClientFrame) bool {
	i := flatSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = flatSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return flatSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := flatString(b, i)
		if !ok {
			return false
		}
		i = flatSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = flatSpace(b, i+1)
		if string(key) == "id" {
			id, next, ok := flatUint(b, i)
			if !ok {
				return false
			}
			f.ID, i = id, next
		} else {
			val, next, ok := flatString(b, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "type":
				f.Type = frameType(val)
			case "token":
				f.Token = string(val)
			case "channel":
				f.Channel = string(val)
			case "event":
				f.Event = string(val)
			default:
				return false
			}
			i = next
		}
		i = flatSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = flatSpace(b, i+1)
		case '}':
			return flatSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// frameType returns the constant for a known type, which saves an
// allocation, else a copy of t.
func frameType(t []byte) string {
	switch string(t) {
	case TypeAuth:
		return TypeAuth
	case TypeSubscribe:
		return TypeSubscribe
	case TypeUnsubscribe:
		return TypeUnsubscribe
	case TypePublish:
		return TypePublish
	case TypeRefresh:
		return TypeRefresh
	case TypePing:
		return TypePing
	case TypePresence:
		return TypePresence
	}
	return string(t)
}

func flatSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// flatString reads a string at b[i] made only of printable ASCII other
// than '"' and '\\', which JSON takes as is; next is the index after it.
func flatString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// flatUint reads a JSON number at b[i] that is a plain non-negative
// integer of at most 19 digits (so it fits a uint64): "0" or a non-zero
// digit and more digits, no sign, fraction or exponent.
func flatUint(b []byte, i int) (n uint64, next int, ok bool) {
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		n = n*10 + uint64(b[j]-'0')
		j++
		if j-i > 19 {
			return 0, 0, false
		}
	}
	switch {
	case j == i:
		return 0, 0, false
	case b[i] == '0' && j-i > 1:
		return 0, 0, false // a leading zero is not JSON
	case j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E'):
		return 0, 0, false // json would refuse a fraction for a uint64
	}
	return n, j, true
}
