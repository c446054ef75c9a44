package bench

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/servertest"
)

// TestConnectionsBothWays opens connections through the pollers (an IP
// address) and through dialWS with a read goroutine each (a host name):
// both authenticate, subscribe and stay open.
func TestConnectionsBothWays(t *testing.T) {
	srv := servertest.Start(t)
	for _, ws := range []string{srv.WSURL, strings.Replace(srv.WSURL, "127.0.0.1", "localhost", 1)} {
		res, err := Run(context.Background(), Options{
			Scenario: "connections", WS: []string{ws}, API: []string{srv.APIBase()},
			APIKey: servertest.APIKey, Secret: servertest.Secret,
			Conns: 50, Rate: 0, Duration: 200 * time.Millisecond, Quiet: true, Progress: io.Discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Connections != 50 || res.Errors != 0 || res.Dropped != 0 || res.ConnectRate <= 0 {
			t.Fatalf("%s: %d connections, %d errors %v, %d dropped, connect rate %.0f",
				ws, res.Connections, res.Errors, res.ErrorSamples, res.Dropped, res.ConnectRate)
		}
	}
}

// TestRefusedConnectionsAreCounted: tokens the server refuses, and a port
// nobody listens on, end each attempt with an error saying why, and the
// run ends.
func TestRefusedConnectionsAreCounted(t *testing.T) {
	srv := servertest.Start(t)
	res, err := Run(context.Background(), Options{
		Scenario: "connections", WS: []string{srv.WSURL}, API: []string{srv.APIBase()},
		APIKey: servertest.APIKey, Secret: strings.Repeat("w", 40),
		Conns: 20, Duration: 100 * time.Millisecond, Quiet: true, Progress: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connections != 0 || res.Errors != 20 || len(res.ErrorSamples) == 0 || !strings.Contains(res.ErrorSamples[0], "server: ") {
		t.Fatalf("bad tokens: %d connections, %d errors %v", res.Connections, res.Errors, res.ErrorSamples)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "ws://" + ln.Addr().String() + "/ws"
	ln.Close()
	res, err = Run(context.Background(), Options{
		Scenario: "connections", WS: []string{closed}, API: []string{srv.APIBase()},
		APIKey: servertest.APIKey, Secret: servertest.Secret,
		Conns: 5, Duration: 100 * time.Millisecond, Quiet: true, Progress: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connections != 0 || res.Errors != 5 || !strings.Contains(strings.Join(res.ErrorSamples, " "), "refused") {
		t.Fatalf("closed port: %d connections, %d errors %v", res.Connections, res.Errors, res.ErrorSamples)
	}
}
