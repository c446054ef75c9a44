package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var flatSeeds = []string{
	`{"type":"auth","token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"}`,
	`{"type":"subscribe","id":1,"channel":"a:b"}`,
	` { "id" : 18446744073709551615 , "type" : "ping" } `,
	"{\n\t\"type\":\"unsubscribe\",\r\n\"id\":7,\"channel\":\"x\"}",
	`{"type":"publish","id":2,"channel":"c","event":"e"}`,
	`{"type":"publish","id":2,"channel":"c","event":"e","data":{"x":[1]}}`,
	`{"type":"subscribe","id":1,"channel":"a","since":{"epoch":"E","offset":3}}`,
	`{}`, `{"type":"auth"}`, `{"type":"auth","token":""}`, `{"type":"nope","id":1}`,
	`{"type":"subscribe","id":1,"channel":"a","channel":"b"}`,
	`{"TYPE":"auth","token":"x"}`, `{"type":"auth","Token":"x"}`,
	`{"type":"a\u0075th","token":"x"}`, `{"type":"auth","token":"é"}`,
	`{"type":"auth","token":null}`, `{"type":null}`, `{"id":null,"type":"ping"}`,
	`{"type":"ping","id":01}`, `{"type":"ping","id":-1}`, `{"type":"ping","id":1.0}`,
	`{"type":"ping","id":1e2}`, `{"type":"ping","id":18446744073709551616}`,
	`{"type":"ping","id":99999999999999999999}`, `{"type":"ping","id":"1"}`,
	`{"type":"ping","id":1,}`, `{"type":"ping","id":1}x`, `{"type":"ping","id":1}{}`,
	`{"type":"ping" "id":1}`, `{"type":"ping","id":1`, `{"type":"ping","id":0}`,
	`[]`, `null`, ``, `{`, `"x"`, "{\"type\":\"au\x00th\"}", "{\"type\":\"auth\",\"token\":\"\xff\"}",
}

// TestDecodeFlat checks which frames take the fast path and that they
// decode as with encoding/json.
func TestDecodeFlat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		flat bool
	}{
		{`{"type":"auth","token":"abc.def.ghi"}`, true},
		{` { "id" : 9999999999999999999 , "type" : "ping" } `, true},
		{`{"id":18446744073709551615,"type":"ping"}`, false}, // 20 digits: json decides
		{`{"type":"subscribe","id":1,"channel":"a:b","event":"e"}`, true},
		{`{}`, true},
		{`{"type":"subscribe","id":1,"channel":"a","channel":"b"}`, true},
		{`{"type":"publish","id":2,"channel":"c","event":"e","data":1}`, false},
		{`{"type":"subscribe","id":1,"channel":"a","since":{"epoch":"E","offset":3}}`, false},
		{`{"TYPE":"auth","token":"x"}`, false},
		{`{"type":"a\u0075th","token":"x"}`, false},
		{`{"type":"auth","token":"é"}`, false},
		{`{"type":"auth","token":null}`, false},
		{`{"type":"ping","id":01}`, false},
		{`{"type":"ping","id":-1}`, false},
		{`{"type":"ping","id":1.0}`, false},
		{`{"type":"ping","id":1e2}`, false},
		{`{"type":"ping","id":18446744073709551616}`, false},
		{`{"type":"ping","id":1,}`, false},
		{`{"type":"ping","id":1}x`, false},
		{`{"type":"ping","id":1`, false},
		{`[]`, false},
		{``, false},
	} {
		var f ClientFrame
		if got := decodeFlat([]byte(tc.in), &f); got != tc.flat {
			t.Errorf("decodeFlat(%s) = %v, want %v", tc.in, got, tc.flat)
			continue
		}
		if tc.flat {
			var want ClientFrame
			if err := json.Unmarshal([]byte(tc.in), &want); err != nil || !reflect.DeepEqual(f, want) {
				t.Errorf("decodeFlat(%s) = %+v, json: %+v %v", tc.in, f, want, err)
			}
		}
	}
	// Both paths give the same answers, errors included.
	for _, s := range flatSeeds {
		checkSameDecode(t, []byte(s))
	}
	long := `{"type":"auth","token":"` + strings.Repeat("a", 5000) + `"}`
	checkSameDecode(t, []byte(long))
}

func checkSameDecode(t *testing.T, b []byte) {
	t.Helper()
	got, gotErr := DecodeClientFrame(b)
	want, wantErr := decodeClientFrameJSON(b)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotErr, wantErr) {
		t.Fatalf("DecodeClientFrame(%q) = %+v, %v; through encoding/json: %+v, %v", b, got, gotErr, want, wantErr)
	}
}

// FuzzDecodeFlat: whatever decodeFlat accepts, encoding/json decodes to
// the same frame, and DecodeClientFrame answers every input as it did
// through encoding/json alone.
func FuzzDecodeFlat(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr ClientFrame
		if decodeFlat(b, &fr) {
			var want ClientFrame
			if err := json.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(fr, want) {
				t.Fatalf("decodeFlat(%q) = %+v; json: %+v, %v", b, fr, want, err)
			}
		}
		checkSameDecode(t, b)
	})
}

// BenchmarkDecodeFlat compares the fast path with encoding/json on the
// frames of a new connection.
func BenchmarkDecodeFlat(b *testing.B) {
	for _, in := range []string{
		`{"type":"auth","token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZW5jaC0xIiwiZXhwIjoxNzY0NzY0MDAwLCJpYXQiOjE3NjQ3NjA0MDB9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlMTIz"}`,
		`{"type":"subscribe","id":1,"channel":"bench-12345"}`,
	} {
		for _, path := range []struct {
			name string
			f    func([]byte) (*ClientFrame, error)
		}{{"flat", DecodeClientFrame}, {"json", decodeClientFrameJSON}} {
			var f ClientFrame
			_ = json.Unmarshal([]byte(in), &f)
			b.Run(f.Type+"/"+path.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := path.f([]byte(in)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
