package server_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/eddyrt/eddy/internal/servertest"
)

// docs/metrics.md lists every metric: each one a busy node exposes is
// documented with its type and labels, and each documented one still exists
// in the code.
func TestMetricsAreDocumented(t *testing.T) {
	doc := readMetricsDoc(t)
	s := servertest.StartNode(t)
	ctx := context.Background()
	// A little of everything, so labelled metrics have children to show.
	ws := servertest.Connect(t, s.WSURL, servertest.Token(t, "m", nil, []string{"*"}))
	ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:m"})
	ws.Request(map[string]any{"type": "publish", "id": 2, "channel": "chat:m", "event": "e", "data": 1})
	ws.Request(map[string]any{"type": "subscribe", "id": 3, "channel": "bad channel"})
	if _, err := s.API().Publish(ctx, "chat:m", "e", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin().Do(ctx, http.MethodPut, "/api/v1/functions/f", map[string]any{"runtime": "js", "source": "function handle(m){ return m }"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin().Do(ctx, http.MethodPost, "/api/v1/functions/f/invoke", map[string]any{"channel": "chat:m", "data": 1}, nil); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.APIBase()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+servertest.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for name, m := range exposedMetrics(body) {
		if !strings.HasPrefix(name, "eddy_") {
			continue // the Go runtime's and the process's, documented by Prometheus
		}
		d, ok := doc[name]
		switch {
		case !ok:
			t.Errorf("metric %s (%s, labels %v) is not in docs/metrics.md", name, m.typ, m.labels)
		case d.typ != m.typ:
			t.Errorf("docs/metrics.md says %s is a %s; it is a %s", name, d.typ, m.typ)
		case strings.Join(d.labels, ",") != strings.Join(m.labels, ","):
			t.Errorf("docs/metrics.md gives %s the labels %v; it has %v", name, d.labels, m.labels)
		}
	}
	src := sourceText(t)
	for name := range doc {
		rest := strings.TrimPrefix(name, "eddy_")
		parts := strings.SplitN(rest, "_", 2)
		if !strings.Contains(src, `"`+name+`"`) && !(len(parts) == 2 && strings.Contains(src, `Subsystem: "`+parts[0]+`"`) && strings.Contains(src, `"`+parts[1]+`"`)) {
			t.Errorf("docs/metrics.md lists %s, which no code defines", name)
		}
	}
}

type metricInfo struct {
	typ    string
	labels []string
}

var docRow = regexp.MustCompile("^\\| `(eddy_[a-z0-9_]+)` \\| (counter|gauge|histogram|summary) \\| ([^|]*) \\|")

func readMetricsDoc(t *testing.T) map[string]metricInfo {
	t.Helper()
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]metricInfo{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := docRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" && l != "-" {
				labels = append(labels, l)
			}
		}
		sort.Strings(labels)
		out[m[1]] = metricInfo{typ: m[2], labels: labels}
	}
	if len(out) == 0 {
		t.Fatal("docs/metrics.md has no metric rows")
	}
	return out
}

// exposedMetrics reads the text exposition format: families from # TYPE
// lines, label names from their samples (le and quantile excepted).
func exposedMetrics(b []byte) map[string]metricInfo {
	out := map[string]metricInfo{}
	labels := map[string]map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var family string
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			family = f[2]
			out[family] = metricInfo{typ: f[3]}
			labels[family] = map[string]bool{}
			continue
		}
		if strings.HasPrefix(line, "#") || family == "" || !strings.HasPrefix(line, family) {
			continue
		}
		if i := strings.IndexByte(line, '{'); i >= 0 {
			for _, kv := range strings.Split(line[i+1:strings.IndexByte(line, '}')], ",") {
				if k, _, ok := strings.Cut(kv, "="); ok && k != "le" && k != "quantile" {
					labels[family][k] = true
				}
			}
		}
	}
	for name, m := range out {
		for l := range labels[name] {
			m.labels = append(m.labels, l)
		}
		sort.Strings(m.labels)
		out[name] = m
	}
	return out
}

func sourceText(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk("..", func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		b.Write(src)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
