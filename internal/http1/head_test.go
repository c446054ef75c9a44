package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func TestParse(t *testing.T) {
	const ok = "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nAuthorization: Bearer k\r\n\r\n"
	for _, tc := range []struct {
		name, in string
		want     Result
	}{
		{"plain", ok, Complete},
		{"body after the head", ok + `{"a":1}`, Complete},
		{"connection close", strings.Replace(ok, "Host: x", "Host: x\r\nConnection: keep-alive, close", 1), Complete},
		{"tab around a value", strings.Replace(ok, "Host: x", "Host:\tx\t", 1), Complete},
		{"empty", "", Incomplete},
		{"request line started", "POST /api/v1/pub", Incomplete},
		{"headers started", "POST / HTTP/1.1\r\nHost: x\r\nContent-Le", Incomplete},
		{"last CR", "POST / HTTP/1.1\r\nHost: x\r\n\r", Incomplete},
		{"HTTP/1.0", strings.Replace(ok, "HTTP/1.1", "HTTP/1.0", 1), Unsupported},
		{"no host", strings.Replace(ok, "Host: x\r\n", "", 1), Unsupported},
		{"two hosts", strings.Replace(ok, "Host: x", "Host: x\r\nHost: y", 1), Unsupported},
		{"chunked", strings.Replace(ok, "Content-Length: 12", "Transfer-Encoding: chunked", 1), Unsupported},
		{"length and chunked", strings.Replace(ok, "Host: x", "Host: x\r\nTransfer-Encoding: chunked", 1), Unsupported},
		{"two lengths", strings.Replace(ok, "Host: x", "Host: x\r\nContent-Length: 12", 1), Unsupported},
		{"signed length", strings.Replace(ok, "12", "+12", 1), Unsupported},
		{"expect", strings.Replace(ok, "Host: x", "Host: x\r\nExpect: 100-continue", 1), Unsupported},
		{"upgrade", strings.Replace(ok, "Host: x", "Host: x\r\nConnection: Upgrade", 1), Unsupported},
		{"folded", strings.Replace(ok, "Host: x", "Host: x\r\nX-A: b\r\n c", 1), Unsupported},
		{"space before colon", strings.Replace(ok, "Host: x", "Host : x", 1), Unsupported},
		{"bare LF", strings.Replace(ok, "Host: x\r\n", "Host: x\n", 1), Unsupported},
		{"bare CR in value", strings.Replace(ok, "Host: x", "Host: x\ry", 1), Unsupported},
		{"NUL in value", strings.Replace(ok, "Host: x", "Host: x\x00", 1), Unsupported},
		{"absolute form", strings.Replace(ok, "/api/v1/publish", "http://x/api", 1), Unsupported},
		{"space in target", strings.Replace(ok, "/api/v1/publish", "/a b", 1), Unsupported},
		{"leading empty line", "\r\n" + ok, Unsupported},
		{"garbage before the end", "\x16\x03\x01\x02", Unsupported},
		{"lowercase version", strings.Replace(ok, "HTTP/1.1", "http/1.1", 1), Unsupported},
	} {
		var h Head
		if got := Parse([]byte(tc.in), &h); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	var h Head
	in := []byte(strings.Replace(ok, "Host: x", "Host: x\r\nConnection: close", 1) + "body")
	if Parse(in, &h) != Complete || string(h.Method) != "POST" || string(h.Target) != "/api/v1/publish" ||
		h.ContentLength != 12 || !h.Close || h.Len != len(in)-len("body") || h.NFields != 4 {
		t.Fatalf("parsed %+v", h)
	}
	if string(h.Fields[3].Name) != "Authorization" || string(h.Fields[3].Value) != "Bearer k" {
		t.Fatalf("fields %q", h.Fields[:h.NFields])
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	in := []byte("POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 12\r\nAuthorization: Bearer k\r\nAccept-Encoding: gzip\r\n\r\n")
	var h Head
	if n := testing.AllocsPerRun(100, func() { Parse(in, &h) }); n != 0 {
		t.Fatalf("%v allocations per Parse", n)
	}
}

func BenchmarkParse(b *testing.B) {
	in := []byte("POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 52\r\nAuthorization: Bearer 0123456789abcdef0123456789\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n")
	var h Head
	b.ReportAllocs()
	for b.Loop() {
		Parse(in, &h)
	}
}

// FuzzParse: a head Parse completes is one net/http reads the same way;
// Parse never reads more, or less, of the stream than net/http would.
func FuzzParse(f *testing.F) {
	f.Add([]byte("POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("POST /apps/1/events?auth_key=k&body_md5=x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"))
	// Hosts net/http's server refuses, odd bytes, a target url.Parse refuses.
	for _, host := range []string{"x y", "x\"", "x{", "\xff", "", "a/b"} {
		f.Add([]byte("POST / HTTP/1.1\r\nHost: " + host + "\r\n\r\n"))
	}
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nX-A: \xff\r\n\r\n"))
	f.Add([]byte("POST /\xff HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /a#b HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /%zz HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var h Head
		res := Parse(in, &h)
		if res != Complete {
			return
		}
		if h.Len > len(in) || h.ContentLength < -1 {
			t.Fatalf("Len %d of %d, ContentLength %d", h.Len, len(in), h.ContentLength)
		}
		br := bufio.NewReaderSize(bytes.NewReader(in), len(in)+16)
		r, err := http.ReadRequest(br)
		if err != nil && strings.Contains(err.Error(), "parse \"") {
			return // the target's URL syntax: the caller checks it (and hands such a request to net/http)
		}
		if err != nil {
			t.Fatalf("Parse took %q, net/http refuses it: %v", in[:h.Len], err)
		}
		if !httpguts.ValidHostHeader(r.Host) {
			t.Fatalf("Parse took host %q, which net/http's server refuses", r.Host)
		}
		if r.Method != string(h.Method) || r.RequestURI != string(h.Target) {
			t.Fatalf("request line %s %s, net/http %s %s", h.Method, h.Target, r.Method, r.RequestURI)
		}
		want := h.ContentLength
		if want < 0 {
			want = 0
		}
		if r.ContentLength != want || r.Close != h.Close {
			t.Fatalf("length %d close %v, net/http %d %v", h.ContentLength, h.Close, r.ContentLength, r.Close)
		}
		if got := len(in) - br.Buffered(); got != h.Len {
			t.Fatalf("head is %d bytes, net/http read %d", h.Len, got)
		}
		fields := 0
		for i := range h.NFields {
			name := http.CanonicalHeaderKey(string(h.Fields[i].Name))
			if name == "Host" {
				if r.Host != string(h.Fields[i].Value) {
					t.Fatalf("host %q, net/http %q", h.Fields[i].Value, r.Host)
				}
				continue
			}
			fields++
			if !contains(r.Header[name], string(h.Fields[i].Value)) {
				t.Fatalf("field %s: %q, net/http %q", name, h.Fields[i].Value, r.Header[name])
			}
		}
		n := 0
		for _, vs := range r.Header {
			n += len(vs)
		}
		if n != fields {
			t.Fatalf("%d fields, net/http %d", fields, n)
		}
	})
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}
