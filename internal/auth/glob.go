package auth

import (
	"fmt"
	"unicode/utf8"
)

// Match reports whether name matches the glob pattern: '*' matches any run of
// characters (including ':'), '?' exactly one. Channel names cannot contain
// either, so a channel name used as a pattern matches only itself.
func Match(pattern, name string) bool {
	// Iterative matcher with one backtrack point: linear in practice and
	// immune to the exponential blow-up of naive recursion on "a*a*a*b".
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// MatchAny reports whether any pattern matches name.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}

// ValidatePattern checks a glob pattern: channel characters plus '*' and '?'.
func ValidatePattern(p string) error {
	if p == "" || len(p) > 255 {
		return fmt.Errorf("channel pattern %q must be 1-255 characters", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '*' || c == '?' || c == '_' || c == '-' || c == ':' || c == '.' || c == '@' || c == '=' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			continue
		}
		r, _ := utf8.DecodeRuneInString(p[i:])
		return fmt.Errorf("channel pattern %q has invalid character %q at byte %d", p, r, i)
	}
	return nil
}
