package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/node"
	"github.com/eddyrt/eddy/internal/server"
	"github.com/eddyrt/eddy/internal/servertest"
)

// eddyClients counts the connections a node holds to rs (they are named eddy-<node>).
func eddyClients(t *testing.T, rs *redistest.Server) int {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.Do(context.Background(), c.B().ClientList().Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(list, "name=eddy-")
}

func awaitNoClients(t *testing.T, rs *redistest.Server) {
	t.Helper()
	servertest.Eventually(t, "the node's Redis connections closed", func() bool { return eddyClients(t, rs) == 0 })
}

// The node owns the broker it built: the server it is given to leaves it
// open at Shutdown, and the node's Close releases it.
func TestNodeClosesTheBrokerItBuilt(t *testing.T) {
	rs := redistest.Start(t)
	cfg := servertest.Config()
	cfg.DataDir = t.TempDir()
	cfg.Redis = []string{rs.URL()}
	n, err := node.Build(cfg, servertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(n.Options)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !n.Redis.Ready() {
		t.Fatal("the server's Shutdown closed a broker it did not create")
	}
	if eddyClients(t, rs) == 0 {
		t.Fatal("no node connections to Redis before Close: the test cannot tell anything")
	}
	n.Close()
	awaitNoClients(t, rs)
	n.Close() // twice is harmless
}

// A Build that fails after creating the broker (here: the function store
// cannot be read at all; a single corrupt function is only skipped) closes
// the broker before returning.
func TestNodeBuildFailureClosesTheBroker(t *testing.T) {
	rs := redistest.Start(t)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(context.Background(), c.B().Set().Key("eddy:functions").Value("not a hash").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	cfg := servertest.Config()
	cfg.DataDir = t.TempDir()
	cfg.Redis = []string{rs.URL()}
	if _, err := node.Build(cfg, servertest.Logger(t)); err == nil {
		t.Fatal("Build with an unreadable function store succeeded")
	}
	awaitNoClients(t, rs)
}
