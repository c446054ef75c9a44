package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestCapacityPrintsTheDocumentedPlan(t *testing.T) {
	out, err := runRoot("capacity", "--connections", "1000000", "--channels", "10000", "--subscribers", "100",
		"--publishes", "10000", "--message-bytes", "100", "--connects", "300")
	if err != nil {
		t.Fatalf("capacity: %v\n%s", err, out)
	}
	for _, want := range []string{"deliveries/s = publishes/s 10,000 × subscribers per channel 100 = 1,000,000", "result: 4 Eddy nodes, 1 Redis shards"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	// Connections read by gws's goroutine (TLS at Eddy, compression) are
	// planned with --conn-kib: the same million then needs a fifth node.
	out, err = runRoot("capacity", "--connections", "1000000", "--channels", "10000", "--subscribers", "100",
		"--publishes", "10000", "--message-bytes", "100", "--connects", "300", "--conn-kib", "8.5")
	if err != nil || !strings.Contains(out, "per connection 8.5 KiB RSS") || !strings.Contains(out, "result: 5 Eddy nodes") {
		t.Fatalf("capacity --conn-kib 8.5: %v\n%s", err, out)
	}
	// Leaves default to the joins; bigger nodes are a flag.
	out, err = runRoot("capacity", "--node-cores", "8", "--node-mem-gib", "32", "--presence", "--join-leave", "--joins", "10")
	if err != nil || !strings.Contains(out, "(joins/s 10 + leaves/s 10)") || !strings.Contains(out, "8 cores") {
		t.Fatalf("capacity with presence on 8-core nodes: %v\n%s", err, out)
	}
}

func TestCapacityRefusesBadInput(t *testing.T) {
	if _, err := runRoot("capacity", "--join-leave"); err == nil || !strings.Contains(err.Error(), "presence") {
		t.Fatalf("--join-leave without --presence: %v, want an error naming presence", err)
	}
	if _, err := runRoot("capacity", "--target-util", "0"); err == nil || !strings.Contains(err.Error(), "target utilisation") {
		t.Fatalf("--target-util 0: %v", err)
	}
}

// TestCapacityDocMatchesProgram keeps docs/capacity.md true: every
// "$ eddy capacity ..." block there must be what the program prints.
func TestCapacityDocMatchesProgram(t *testing.T) {
	doc, err := os.ReadFile("../../docs/capacity.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```\\n\\$ eddy (capacity[^\\n]*)\\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d eddy capacity examples in docs/capacity.md, want at least 3", len(blocks))
	}
	for _, b := range blocks {
		out, err := runRoot(strings.Fields(b[1])...)
		if err != nil {
			t.Fatalf("eddy %s: %v", b[1], err)
		}
		for _, line := range strings.Split(b[2], "\n") {
			if strings.TrimSpace(line) != "" && !strings.Contains(out, strings.TrimSpace(line)) {
				t.Errorf("eddy %s: docs/capacity.md shows %q, the program prints:\n%s", b[1], line, out)
			}
		}
	}
}
