package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// pebbleBinary finds the ACME test server that scripts/test builds
// (letsencrypt/pebble); the test fails without it, never skips.
func pebbleBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("EDDY_TEST_PEBBLE")
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".cache", "eddy-test", "bin", "pebble")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("pebble (the ACME test server) is missing: %v; ./scripts/test go builds it, or: GOBIN=~/.cache/eddy-test/bin go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3", err)
	}
	return path
}

// testCA makes a CA and a certificate it signs for 127.0.0.1, for pebble's
// own HTTPS listeners; it returns the CA's PEM and the leaf's files.
func testCA(t *testing.T, dir string) (caPEM []byte, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "eddy test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	certFile, keyFile = filepath.Join(dir, "pebble-cert.pem"), filepath.Join(dir, "pebble-key.pem")
	replaceFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
	replaceFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}

// pebble is a running ACME server.
type pebble struct {
	directory  string // ACME directory URL
	management string // https://host:port of the management API
	caPEM      []byte // the CA of its HTTPS certificate
	https      *http.Client
	stop       func()
}

// startPebble runs pebble on free loopback ports with validation skipped
// (PEBBLE_VA_ALWAYS_VALID: no DNS for eddy.test here) and no deliberate
// nonce rejections, and waits until its directory answers.
func startPebble(t *testing.T) *pebble {
	t.Helper()
	bin := pebbleBinary(t)
	dir := t.TempDir()
	caPEM, certFile, keyFile := testCA(t, dir)
	listen, mgmt := servertest.FreeAddr(t), servertest.FreeAddr(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles":                       map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 7776000}},
	}}
	confPath := filepath.Join(dir, "pebble.json")
	b, _ := json.Marshal(conf)
	replaceFile(t, confPath, b)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-config", confPath)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("pebble output:\n%s", logs.String())
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	p := &pebble{directory: "https://" + listen + "/dir", management: "https://" + mgmt, caPEM: caPEM, https: https, stop: stop}
	servertest.Eventually(t, "pebble's directory to answer", func() bool {
		resp, err := https.Get(p.directory)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// root returns pebble's issuing root certificate from its management API.
func (p *pebble) root(t *testing.T) *x509.Certificate {
	t.Helper()
	resp, err := p.https.Get(p.management + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	block, _ := pem.Decode(body)
	if resp.StatusCode != 200 || block == nil {
		t.Fatalf("pebble /roots/0: %s %q", resp.Status, body)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestACMECertificateFromARealACMEServer(t *testing.T) {
	p := startPebble(t)
	dir := t.TempDir()
	caRoot := filepath.Join(dir, "acme-ca-root.pem")
	replaceFile(t, caRoot, p.caPEM)
	const domain = "eddy.test"
	s := servertest.Start(t, func(c *config.Config) {
		c.ACMEDomains = []string{domain}
		c.ACMEEmail = "ops@eddy.test"
		c.ACMECA = p.directory
		c.ACMECARoot = caRoot
		c.DataDir = filepath.Join(dir, "data")
		c.APIListen = "127.0.0.1:0"
	})
	roots := x509.NewCertPool()
	roots.AddCert(p.root(t))
	// The name is resolved by dialling the server's address directly with
	// the domain as SNI. The first handshake gets the certificate from the
	// CA; it must chain to pebble's root and name the domain.
	tc := &tls.Config{ServerName: domain, RootCAs: roots}
	conn, err := tls.Dial("tcp", s.Addr().String(), tc)
	if err != nil {
		t.Fatalf("TLS handshake for %s: %v", domain, err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if err := leaf.VerifyHostname(domain); err != nil {
		t.Fatal(err)
	}

	// wss:// and https:// work with it.
	ws := servertest.DialTLS(t, "wss://"+s.Addr().String()+"/ws", tc)
	ws.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "al", nil, nil)})
	ws.Expect("ready")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+s.APIAddr().String()+"/api/v1/info", nil)
	req.Header.Set("Authorization", "Bearer "+servertest.APIKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("https API: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.TLS.PeerCertificates[0].Equal(leaf) {
		t.Fatalf("https API: status %d, same certificate %v", resp.StatusCode, resp.TLS.PeerCertificates[0].Equal(leaf))
	}
	// A name not in acme_domains gets no certificate.
	if c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{ServerName: "other.test", RootCAs: roots}); err == nil {
		c.Close()
		t.Fatal("handshake for a domain not in acme_domains succeeded")
	}

	// The certificate and account are kept in data_dir: with the CA gone,
	// a restarted server serves the same certificate.
	p.stop()
	cfg := s.Config
	s = restart(t, s, cfg)
	conn, err = tls.Dial("tcp", s.Addr().String(), tc)
	if err != nil {
		t.Fatalf("handshake after restart with the CA down: %v", err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(leaf) {
		t.Fatalf("after restart: served certificate %s, want the cached one %s", got.SerialNumber, leaf.SerialNumber)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "acme", domain)); err != nil {
		t.Fatalf("certificate cache: %v", err)
	}
}
