package functions_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/functions"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A dry run (eddy functions invoke) is an operator's test: a failure is
// reported in its result, not logged as a warning nor counted as traffic.
func TestDryRunFailureIsNeitherLoggedNorCounted(t *testing.T) {
	var logs lockedBuffer
	reg := prometheus.NewRegistry()
	e := newEngine(t, functions.Options{Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	deployJS(t, e, "broken", `function handle(m){ while (true) {} }`, 20)
	res, err := e.Invoke(context.Background(), "broken", msg("c", `1`))
	if err != nil || res.Action != "error" || !strings.Contains(res.Reason, "timeout") {
		t.Fatalf("Invoke = %+v, %v; want action error naming the timeout", res, err)
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Fatalf("a dry run logged a warning:\n%s", logs.String())
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "eddy_functions_errors_total" || f.GetName() == "eddy_functions_invocations_total" {
			for _, m := range f.GetMetric() {
				if m.GetCounter().GetValue() != 0 {
					t.Fatalf("a dry run was counted in %s", f.GetName())
				}
			}
		}
	}
}
