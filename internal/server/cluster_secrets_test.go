package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// TestClusterSecrets: a secret set through one node of a Redis cluster is
// stored encrypted in Redis (its value appears nowhere in Redis) and read
// by the function on the other node as ctx.secrets.NAME; deleting it
// through that other node is seen by the first.
func TestClusterSecrets(t *testing.T) {
	rs := redistest.Start(t)
	key := config.NewSecretsKey()
	nodes := clusterOn(t, rs, 2, func(c *config.Config) { c.SecretsKey = key })
	const value = "cluster-secret-value-123"
	adminPut(t, nodes[0], "/api/v1/secrets/TOKEN", `{"value":"`+value+`"}`)
	body, _ := json.Marshal(map[string]any{"runtime": "js", "source": `function handle(m, ctx) { m.data = {len: (ctx.secrets.TOKEN || "").length}; return m }`})
	adminPut(t, nodes[0], "/api/v1/functions/peek", string(body))

	invoke := func(n *servertest.Server) string {
		var out struct {
			Message struct {
				Data json.RawMessage `json:"data"`
			} `json:"message"`
		}
		c := api.NewClient(n.APIBase(), n.Config.AdminKey)
		if err := c.Do(context.Background(), "POST", "/api/v1/functions/peek/invoke", map[string]any{"channel": "c:1", "data": 1}, &out); err != nil {
			return err.Error()
		}
		return string(out.Message.Data)
	}
	want := fmt.Sprintf(`{"len":%d}`, len(value))
	servertest.Eventually(t, "node 1 reads the secret set on node 0", func() bool { return invoke(nodes[1]) == want })

	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx := context.Background()
	keys, err := rc.Do(ctx, rc.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	found := false
	for _, k := range keys {
		if typ, _ := rc.Do(ctx, rc.B().Type().Key(k).Build()).ToString(); typ != "hash" {
			continue
		}
		m, _ := rc.Do(ctx, rc.B().Hgetall().Key(k).Build()).AsStrMap()
		for f, v := range m {
			if strings.Contains(v, value) {
				t.Fatalf("the secret's value is in Redis in clear: %s %s", k, f)
			}
			found = found || f == "TOKEN"
		}
	}
	if !found {
		t.Fatal("no Redis hash holds the sealed TOKEN")
	}

	c := api.NewClient(nodes[1].APIBase(), nodes[1].Config.AdminKey)
	if err := c.Do(context.Background(), "DELETE", "/api/v1/secrets/TOKEN", nil, nil); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "node 0 sees the delete", func() bool { return invoke(nodes[0]) == `{"len":0}` })
}
