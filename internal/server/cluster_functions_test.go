package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// cutProxy is a TCP proxy that can cut every connection through it and
// refuse new ones until restored: a node cut off from Redis.
type cutProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	cut      bool
	conns    map[net.Conn]bool
}

func startCutProxy(t *testing.T, upstream string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { _ = ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *cutProxy) URL() string { return "redis://" + p.ln.Addr().String() + "/0" }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close(); _ = c.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = up.Close(); _ = c.Close() }()
	}
}

// setCut closes every proxied connection and refuses new ones (true), or
// lets connections through again (false).
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

func ready(s *servertest.Server) bool {
	resp, err := http.Get(s.Base + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func adminPut(t *testing.T, s *servertest.Server, path, body string) {
	t.Helper()
	key := s.Config.AdminKey
	if key == "" {
		key = servertest.APIKey
	}
	req, _ := http.NewRequest(http.MethodPut, s.APIBase()+path, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, b)
	}
}

// A node cut off from Redis while a function is deployed through another
// node misses the change notice. It must not go on serving its stale set:
// when its pub/sub reconnects it reloads, so a profanity filter deployed
// through A is never bypassed through C for longer than the reconnect.
func TestClusterNodeReloadsFunctionsAfterReconnect(t *testing.T) {
	rs := redistest.Start(t)
	proxy := startCutProxy(t, rs.Addr())
	setup := func(c *config.Config) {
		c.Namespaces["chat"] = config.ChannelOptions{}
		c.PublishRate = 1000
	}
	a := clusterOn(t, rs, 1, setup)[0]
	c := servertest.StartNode(t, setup, func(cfg *config.Config) {
		cfg.Redis = []string{proxy.URL()}
		cfg.NodeName = "node-c"
	})
	servertest.Eventually(t, "node C ready", func() bool { return ready(c) })

	proxy.setCut(true)
	servertest.Eventually(t, "node C sees Redis gone", func() bool { return !ready(c) })
	adminPut(t, a, "/api/v1/functions/stars", `{"runtime":"js","source":"function handle(m){ m.data = \"***\"; return m }"}`)
	adminPut(t, a, "/api/v1/associations", `{"pattern":"chat:*","functions":["stars"]}`)
	proxy.setCut(false)
	servertest.Eventually(t, "node C ready again", func() bool { return ready(c) })

	// Each try uses a fresh subscriber: right after the reconnect the node
	// may still close its clients with 1012 to make them recover.
	servertest.Eventually(t, "node C applies the function deployed while it was cut off", func() bool {
		ws := servertest.Connect(t, c.WSURL, servertest.Token(t, "reader", nil, nil))
		defer ws.Conn.NetConn().Close()
		if f := ws.Request(map[string]any{"type": "subscribe", "id": 1, "channel": "chat:x"}); f.Type() != "subscribed" {
			return false
		}
		if _, err := c.API().Publish(context.Background(), "chat:x", "e", "darn"); err != nil {
			return false
		}
		for {
			select {
			case f := <-ws.Frames:
				if f.Type() == "message" {
					return f["data"] == "***"
				}
			case <-ws.Closed():
				return false
			case <-time.After(5 * time.Second):
				return false
			}
		}
	})
}
