package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	apipkg "github.com/eddyrt/eddy/api"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// The same as TestNonReadersDoNotHoldBackAHealthySubscriber over TLS: a
// TLS connection's writes go through a non-blocking socket too (under the
// TLS layer), so TLS peers that stop reading hold only their own bytes.
func TestNonReadersDoNotHoldBackAHealthySubscriberOverTLS(t *testing.T) {
	const nonReaders, n = 30, 1000
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM, cert := selfSigned(t, "slow")
	replaceFile(t, certPath, certPEM)
	replaceFile(t, keyPath, keyPEM)
	s := servertest.Start(t, func(c *config.Config) {
		c.TLSCert, c.TLSKey = certPath, keyPath
		c.MaxQueueBytes = 256 << 10
	})
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	tc := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	tok := servertest.Token(t, "sub", nil, nil)
	for range nonReaders {
		dialNonReaderTLS(t, s.Addr().String(), tc, tok, "slow")
	}
	healthy := &countingReader{closed: make(chan struct{}), ready: make(chan struct{})}
	conn, _, err := gws.NewClient(healthy, &gws.ClientOption{Addr: "wss://" + s.Addr().String() + "/ws", TlsConfig: tc, ReadMaxPayloadSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.NetConn().Close() })
	go conn.ReadLoop()
	auth, _ := json.Marshal(map[string]any{"type": "auth", "token": tok})
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "id": 1, "channel": "slow"})
	_ = conn.WriteMessage(gws.OpcodeText, auth)
	_ = conn.WriteMessage(gws.OpcodeText, sub)
	select {
	case <-healthy.ready:
	case <-time.After(servertest.Timeout):
		t.Fatal("healthy subscriber: no subscribed reply")
	}
	servertest.Eventually(t, "every subscriber registered", func() bool { return s.Hub().Subscribers("slow") == nonReaders+1 })

	data := json.RawMessage(`{"pad":"` + strings.Repeat("x", 4096) + `"}`)
	api := apipkg.NewClient("https://"+s.Addr().String(), servertest.APIKey)
	api.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 8}, Timeout: 30 * time.Second}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				if _, err := api.Publish(context.Background(), "slow", "e", data); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("published %d; healthy has %d", n, healthy.messages.Load())
	servertest.EventuallyWithin(t, time.Minute, "the healthy TLS subscriber to receive every message", func() bool {
		select {
		case <-healthy.closed:
			t.Fatalf("healthy subscriber closed with %d after %d of %d messages", healthy.closeCode.Load(), healthy.messages.Load(), n)
		default:
		}
		return healthy.messages.Load() == n
	})
	servertest.Eventually(t, "every non-reader closed with 4009", func() bool {
		return disconnects(t, s, "4009") == nonReaders
	})
}

// dialNonReaderTLS is dialNonReader over TLS: handshake, auth and
// subscribe, then nothing is ever read.
func dialNonReaderTLS(t testing.TB, addr string, tc *tls.Config, token, channel string) {
	t.Helper()
	conn := tls.Client(dialSmallBuffer(t, addr), tc)
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	writeHandshakeAndSubscribe(t, conn, token, channel)
}
