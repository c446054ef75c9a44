package functions

import (
	"strings"
	"unicode/utf8"
)

// match reports whether s matches the glob pattern p: '*' matches any run
// of characters (including none, and including ':'), '?' exactly one
// character; everything else matches itself.
func match(p, s string) bool {
	// Iterative matcher: on a mismatch, backtrack to the last '*' and let it
	// swallow one more character. Linear in practice, O(len(p)*len(s)) worst.
	var px, sx int
	star, next := -1, 0
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				star, next = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += n
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if star >= 0 && next < len(s) {
			_, n := utf8.DecodeRuneInString(s[next:])
			next += n
			px, sx = star+1, next
			continue
		}
		return false
	}
	return true
}

// runsBefore orders patterns, most specific first: fewer wildcards first, then a longer
// literal prefix (the part before the first wildcard), then lexical order.
func runsBefore(a, b string) bool {
	wa, wb := strings.Count(a, "*")+strings.Count(a, "?"), strings.Count(b, "*")+strings.Count(b, "?")
	if wa != wb {
		return wa < wb
	}
	la, lb := literalPrefix(a), literalPrefix(b)
	if la != lb {
		return la > lb
	}
	return a < b
}

func literalPrefix(p string) int {
	if i := strings.IndexAny(p, "*?"); i >= 0 {
		return i
	}
	return len(p)
}
