package protocol

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckDataAccepts(t *testing.T) {
	for _, ok := range []string{
		`null`, `true`, `false`, `0`, `-0`, `1.5e10`, `-1E-400`, `1e308`, `"héllo ☃ 𝄞"`,
		`"\u00e9\ud800\n\"\\\/"`, `[]`, `{}`, ` [1, {"a" : [true, null]} ] `,
		strings.Repeat("[", MaxDataDepth) + strings.Repeat("]", MaxDataDepth),
		`{"data":` + strings.Repeat("[", MaxDataDepth-1) + strings.Repeat("]", MaxDataDepth-1) + `}`,
		strings.Repeat("9", 308),
	} {
		if err := CheckData([]byte(ok)); err != nil {
			t.Errorf("%.80q refused: %v", ok, err)
		}
	}
}

func TestCheckDataRefusesNamingThePosition(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	for _, c := range []struct{ data, msg string }{
		{"\"\xff\xfe\"", "data: invalid UTF-8 at byte 1"},
		{"\"\xc3\x28\"", "data: invalid UTF-8 at byte 1"},
		{"{\"text\":\"ok\",\"bad\":\"ab\xed\xa0\x80\"}", "data: invalid UTF-8 at byte 22"}, // a UTF-8-encoded surrogate
		{"{\"k\xff\":1}", "data: invalid UTF-8 at byte 3"},
		{deep, "data: nested deeper than 64 levels (the limit) at byte 64"},
		{`{"a":` + deep[:100], "data: nested deeper than 64 levels (the limit) at byte 68"},
		{`[1e999]`, "data: number 1e999 is out of range (not finite) at byte 1"},
		{`{"x":-1E400}`, "data: number -1E400 is out of range (not finite) at byte 5"},
		{strings.Repeat("9", 400), "is out of range (not finite) at byte 0"},
		{`{oops`, "data: unexpected character 'o', want a string key at byte 1"},
		{`[1,]`, "data: unexpected character ']' at byte 3"},
		{`01`, "data: unexpected character '1' after the JSON value at byte 1"},
		{"\"a\nb\"", "data: control character in string at byte 2"},
		{`"\x"`, "data: invalid escape at byte 1"},
		{`[1 2]`, "want ',' or ']' at byte 3"},
		{``, "data: unexpected end of JSON at byte 0"},
		{`nul`, "data: unexpected character 'n' at byte 0"},
	} {
		err := CheckData([]byte(c.data))
		if err == nil {
			t.Errorf("%.60q accepted", c.data)
			continue
		}
		pe := AsError(err)
		if pe.Code != CodeBadRequest || !strings.Contains(pe.Message, c.msg) {
			t.Errorf("%.60q: %v, want bad_request containing %q", c.data, err, c.msg)
		}
		if !utf8.ValidString(pe.Message) {
			t.Errorf("%.60q: the message %q is not valid UTF-8", c.data, pe.Message)
		}
	}
}

func TestDiagnoseEnvelope(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	for _, c := range []struct{ body, msg string }{
		{`{"channel":"a","data":` + deep + `}`, "data: nested deeper than 64 levels (the limit) at byte 64"},
		{"{\"channel\":\"a\",\"data\":{\"t\":\"\xff\"}}", "data: invalid UTF-8 at byte 6"},
		{"{\"event\":\"\xff\",\"data\":1}", "body: invalid UTF-8 at byte 10"},
		{`{"extra":` + deep + `}`, "body: nested deeper than 65 levels (the limit) at byte 73"},
		{`{"data":1e999}`, "data: number 1e999 is out of range (not finite) at byte 0"},
		{`{"nested":{"data":"` + "\xff" + `"}}`, "body: invalid UTF-8 at byte 19"},
	} {
		err := DiagnoseEnvelope("body", []byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%.60q: %v, want %q", c.body, err, c.msg)
		}
	}
	if err := DiagnoseEnvelope("body", []byte(`{"data":{"a":[1]},"x":2}`)); err != nil {
		t.Errorf("a valid body: %v", err)
	}
}

func TestCompactDataRefusesWhatCheckDataRefuses(t *testing.T) {
	if _, err := CompactData(json.RawMessage("{ \"a\": \"\xff\" }")); err == nil || !strings.Contains(err.Error(), "invalid UTF-8 at byte 8") {
		t.Fatalf("invalid UTF-8 with white space: %v", err)
	}
	out, err := CompactData(json.RawMessage("[1,\t2]"))
	if err != nil || string(out) != "[1,2]" {
		t.Fatalf("%s %v", out, err)
	}
}

// referenceCheck is what CheckData must agree with: encoding/json's
// syntax, plus UTF-8, depth and finiteness, computed the slow way.
func referenceCheck(b []byte) bool {
	if !json.Valid(b) || !utf8.Valid(b) {
		return false
	}
	var v any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return false // deeper than encoding/json's own limit
	}
	return refDepthOK(v, 0)
}

func refDepthOK(v any, depth int) bool {
	switch x := v.(type) {
	case []any:
		if depth+1 > MaxDataDepth {
			return false
		}
		for _, e := range x {
			if !refDepthOK(e, depth+1) {
				return false
			}
		}
	case map[string]any:
		if depth+1 > MaxDataDepth {
			return false
		}
		for _, e := range x {
			if !refDepthOK(e, depth+1) {
				return false
			}
		}
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return !math.IsInf(f, 0)
	}
	return true
}

// FuzzCheckData: the single-pass validator agrees with encoding/json plus
// the UTF-8, depth and finiteness rules, never panics, and an accepted
// value compacts to valid, newline-free text.
func FuzzCheckData(f *testing.F) {
	for _, s := range []string{
		`{"text":"hello","n":[1,2.5e3,-0]}`, "\"\xff\"", `[[[[[]]]]]`, `1e999`, `{"a":`, `"\u12"`,
		"\"\xed\xa0\x80\"", `[1,{"b":null}]`, ` true `, strings.Repeat("[", 70) + strings.Repeat("]", 70),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckData(b)
		if want := referenceCheck(b); (err == nil) != want {
			t.Fatalf("CheckData(%q) = %v; reference says valid=%v", b, err, want)
		}
		if err != nil {
			if pe := AsError(err); pe.Code != CodeBadRequest || !utf8.ValidString(pe.Message) {
				t.Fatalf("error %q is not a bad_request in valid UTF-8", err)
			}
			return
		}
		out, err := CompactData(b)
		if err != nil || !utf8.Valid(out) || strings.ContainsAny(string(out), "\n\r") {
			t.Fatalf("CompactData(%q) = %q, %v", b, out, err)
		}
	})
}

// A typical chat message of about 200 bytes.
var benchMessage = []byte(`{"text":"Hey, are we still on for lunch tomorrow? I was thinking the new ramen place on 5th, around 12:30.","user":{"id":"u-48213","name":"Zoë"},"ts":1733212800123,"reply_to":null,"tags":["lunch"]}`)

func BenchmarkCheckData(b *testing.B) {
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckData(benchMessage); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONValid is what CompactData called before CheckData: the
// cost to compare with.
func BenchmarkJSONValid(b *testing.B) {
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(benchMessage) {
			b.Fatal("invalid")
		}
	}
}
