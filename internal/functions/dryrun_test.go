package functions_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

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
// reported in its result, not logged as a warning.
func TestDryRunFailureIsNotLoggedAsAWarning(t *testing.T) {
	var logs lockedBuffer
	e := newEngine(t, functions.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	deployJS(t, e, "broken", `function handle(m){ while (true) {} }`, 20)
	res, err := e.Invoke(context.Background(), "broken", msg("c", `1`))
	if err != nil || res.Action != "error" || !strings.Contains(res.Reason, "timeout") {
		t.Fatalf("Invoke = %+v, %v; want action error naming the timeout", res, err)
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Fatalf("a dry run logged a warning:\n%s", logs.String())
	}
}
