package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// eventually waits until cond holds: a change made through one node
// reaches the others through a Redis notice, not at once.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(servertest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, servertest.Timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling another node's state; no event to await
	}
}

func redisKeys(t *testing.T, rc rueidis.Client) []string {
	t.Helper()
	var keys []string
	var cursor uint64
	for {
		e, err := rc.Do(context.Background(), rc.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			return keys
		}
	}
}

// Three nodes on one real redis-server: apps created through any node are
// served by every node, stay apart from each other and from the default
// app, every Redis key of app B carries B's id, and deleting B through one
// node closes its clients on another and removes its keys.
func TestAppsOnAThreeNodeCluster(t *testing.T) {
	rs, nodes := cluster(t, 3, func(c *config.Config) { c.OperatorKey = testOperatorKey })
	a := createApp(t, nodes[0].APIBase(), "app-a", chatNamespace)
	b := createApp(t, nodes[1].APIBase(), "app-b", chatNamespace)
	for _, n := range nodes {
		eventually(t, "every node knows both apps", func() bool {
			st1, _ := publishAs(t, n.APIBase(), a.APIKeys[0].Key, "warmup", "x")
			st2, _ := publishAs(t, n.APIBase(), b.APIKeys[0].Key, "warmup", "x")
			return st1 == http.StatusOK && st2 == http.StatusOK
		})
	}
	wa := servertest.Connect(t, nodes[0].WSURL, appToken(t, a, "alice"))
	wb := servertest.Connect(t, nodes[1].WSURL, appToken(t, b, "bob"))
	wd := servertest.Connect(t, nodes[2].WSURL, servertest.Token(t, "dora", nil, []string{"*"}))
	for _, ws := range []*servertest.WS{wa, wb, wd} {
		if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:lobby"}); f.Type() != "subscribed" {
			t.Fatalf("subscribe: %v", f)
		}
	}
	// Each app publishes through a node other than its subscriber's.
	publishAs(t, nodes[2].APIBase(), a.APIKeys[0].Key, "chat:lobby", "A1")
	publishAs(t, nodes[0].APIBase(), b.APIKeys[0].Key, "chat:lobby", "B1")
	publishAs(t, nodes[1].APIBase(), servertest.APIKey, "chat:lobby", "D1")
	publishAs(t, nodes[1].APIBase(), a.APIKeys[0].Key, "chat:lobby", "A2")
	publishAs(t, nodes[2].APIBase(), b.APIKeys[0].Key, "chat:lobby", "B2")
	publishAs(t, nodes[0].APIBase(), servertest.APIKey, "chat:lobby", "D2")
	for _, c := range []struct {
		ws   *servertest.WS
		want []string
	}{{wa, []string{"A1", "A2"}}, {wb, []string{"B1", "B2"}}, {wd, []string{"D1", "D2"}}} {
		for i, want := range c.want {
			f := c.ws.Expect("message")
			if fmt.Sprint(f["data"]) != fmt.Sprint(map[string]any{"text": want}) || f.Str("channel") != "chat:lobby" || f.Num("offset") != float64(i+1) {
				t.Fatalf("got %v, want %q at offset %d on chat:lobby", f, want, i+1)
			}
		}
	}
	// B's client publishes on a channel only B uses, and is present there.
	if f := wb.Request(map[string]any{"type": "subscribe", "id": 2, "channel": "chat:only-b"}); f.Type() != "subscribed" {
		t.Fatalf("subscribe: %v", f)
	}
	if f := wb.Request(map[string]any{"type": "publish", "id": 3, "channel": "chat:only-b", "event": "e", "data": 1}); f.Type() != "ack" {
		t.Fatalf("publish: %v", f)
	}

	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var bKeys, lobbyKeys []string
	for _, k := range redisKeys(t, rc) {
		if strings.Contains(k, "only-b") {
			if !strings.Contains(k, "{app-b/chat:only-b}") {
				t.Errorf("key %q of app B does not carry B's id", k)
			}
			bKeys = append(bKeys, k)
		}
		if strings.Contains(k, "chat:lobby") {
			lobbyKeys = append(lobbyKeys, k)
		}
	}
	if len(bKeys) < 3 { // numbering, history, presence at least
		t.Fatalf("app B's keys: %v", bKeys)
	}
	for _, id := range []string{"{chat:lobby}", "{app-a/chat:lobby}", "{app-b/chat:lobby}"} {
		found := false
		for _, k := range lobbyKeys {
			found = found || strings.HasSuffix(k, id)
		}
		if !found {
			t.Errorf("no Redis key ends in %s: %v", id, lobbyKeys)
		}
	}

	// Delete B through node 2: its client on node 1 is closed, its keys go,
	// A and the default app go on.
	if st, body := call(t, http.MethodDelete, nodes[2].APIBase()+"/api/v1/apps/app-b", testOperatorKey, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d %s", st, body)
	}
	if code := wb.CloseCode(); code != 4011 {
		t.Fatalf("B's client on another node closed with %d, want 4011", code)
	}
	for _, n := range nodes {
		eventually(t, "every node refuses B's key", func() bool {
			st, _ := publishAs(t, n.APIBase(), b.APIKeys[0].Key, "x", "x")
			return st == http.StatusUnauthorized
		})
	}
	eventually(t, "B's Redis keys are gone", func() bool {
		for _, k := range redisKeys(t, rc) {
			if strings.Contains(k, "app-b/") {
				return false
			}
		}
		return true
	})
	publishAs(t, nodes[1].APIBase(), a.APIKeys[0].Key, "chat:lobby", "A3")
	if f := wa.Expect("message"); fmt.Sprint(f["data"]) != fmt.Sprint(map[string]any{"text": "A3"}) {
		t.Fatalf("A after B's deletion: %v", f)
	}

	// Rotation through one node is in force on the others.
	st, body := call(t, http.MethodPost, nodes[0].APIBase()+"/api/v1/apps/app-a/keys", testOperatorKey, map[string]string{"kind": "jwt"})
	if st != http.StatusCreated {
		t.Fatalf("add key: %d %s", st, body)
	}
	call(t, http.MethodDelete, nodes[0].APIBase()+"/api/v1/apps/app-a/keys/"+a.JWTKeys[0].ID, testOperatorKey, nil)
	for _, n := range nodes {
		eventually(t, "every node refuses the retired key", func() bool {
			ws := servertest.Dial(t, n.WSURL)
			ws.Send(map[string]any{"type": "auth", "token": appToken(t, a, "alice")})
			f := ws.Next()
			return f.Type() == "error" && f.Str("code") == "unauthorized"
		})
	}
}

// A node that missed a notice (here: the app was deleted in Redis with no
// notice at all) reloads its apps when its Redis connection comes back, so
// it never goes on serving the old version.
func TestAppsReloadWhenRedisReturns(t *testing.T) {
	rs := redistest.StartDurable(t)
	nodes := clusterOn(t, rs, 2, func(c *config.Config) { c.OperatorKey = testOperatorKey })
	b := createApp(t, nodes[0].APIBase(), "app-b", nil)
	for _, n := range nodes {
		eventually(t, "every node knows B", func() bool {
			st, _ := publishAs(t, n.APIBase(), b.APIKeys[0].Key, "x", "x")
			return st == http.StatusOK
		})
	}
	wb := servertest.Connect(t, nodes[1].WSURL, appToken(t, b, "bob"))
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Do(context.Background(), rc.B().Hdel().Key("eddy:apps").Field("app-b").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	// No notice was sent: the nodes still serve B until Redis comes back.
	if st, _ := publishAs(t, nodes[1].APIBase(), b.APIKeys[0].Key, "x", "x"); st != http.StatusOK {
		t.Fatalf("before the reconnect: %d", st)
	}
	rs.Restart()
	if code := wb.CloseCode(); code != 4011 {
		t.Fatalf("B's client closed with %d after the reload, want 4011", code)
	}
	for _, n := range nodes {
		eventually(t, "every node dropped B", func() bool {
			st, _ := publishAs(t, n.APIBase(), b.APIKeys[0].Key, "x", "x")
			return st == http.StatusUnauthorized
		})
	}
}
