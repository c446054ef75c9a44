package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/servertest"
)

// selfSigned returns a self-signed certificate for 127.0.0.1 and
// localhost (PEM cert, PEM key) and its parsed form.
func selfSigned(t *testing.T, name string) ([]byte, []byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), cert
}

// replaceFile puts data at path atomically, as certificate tools do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedCert does a fresh TLS handshake with addr trusting roots and
// returns the certificate served.
func servedCert(t *testing.T, addr string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestTLSListenersServeAndReloadCertificates(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert1PEM, key1PEM, cert1 := selfSigned(t, "first")
	replaceFile(t, certPath, cert1PEM)
	replaceFile(t, keyPath, key1PEM)
	s := servertest.Start(t, func(c *config.Config) {
		c.TLSCert, c.TLSKey = certPath, keyPath
		c.APIListen = "127.0.0.1:0"
	})
	roots1 := x509.NewCertPool()
	roots1.AddCert(cert1)
	wss := "wss://" + s.Addr().String() + "/ws"
	apiBase := "https://" + s.APIAddr().String()

	// wss:// on the client listener, trusting the certificate.
	ws := servertest.DialTLS(t, wss, &tls.Config{RootCAs: roots1})
	ws.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "al", nil, nil)})
	ws.Expect("ready")
	// https:// on the API listener: a publish with the API key.
	get := func(roots *x509.CertPool, url string) (int, *x509.Certificate) {
		t.Helper()
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+servertest.APIKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.TLS.PeerCertificates[0]
	}
	if code, got := get(roots1, apiBase+"/api/v1/info"); code != 200 || !got.Equal(cert1) {
		t.Fatalf("https API: status %d, cert %s", code, got.Subject)
	}
	// Plain HTTP on a TLS listener gets no API answer.
	if resp, err := http.Get("http://" + s.APIAddr().String() + "/api/v1/info"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered on the TLS listener")
		}
	}

	// Renewal, certificate first: until its key is in place the pair does
	// not match, and the previous certificate goes on being served.
	cert2PEM, key2PEM, cert2 := selfSigned(t, "second")
	replaceFile(t, certPath, cert2PEM)
	if got := servedCert(t, s.Addr().String(), roots1); !got.Equal(cert1) {
		t.Fatalf("half-replaced files: served %s, want the first certificate still", got.Subject)
	}
	replaceFile(t, keyPath, key2PEM)
	roots2 := x509.NewCertPool()
	roots2.AddCert(cert2)
	// The next handshake on either listener serves the new certificate.
	if got := servedCert(t, s.Addr().String(), roots2); !got.Equal(cert2) {
		t.Fatalf("after renewal: served %s, want second", got.Subject)
	}
	if code, got := get(roots2, apiBase+"/api/v1/info"); code != 200 || !got.Equal(cert2) {
		t.Fatalf("https API after renewal: status %d, cert %s", code, got.Subject)
	}
	ws2 := servertest.DialTLS(t, wss, &tls.Config{RootCAs: roots2})
	ws2.Send(map[string]any{"type": "auth", "token": servertest.Token(t, "bo", nil, nil)})
	ws2.Expect("ready")
	// The connection made before the renewal is untouched.
	if r := ws.Request(map[string]any{"type": "ping", "id": 1}); r.Type() != "pong" {
		t.Fatalf("old connection after renewal: %v", r)
	}
}

func TestTLSConfigRefusedByName(t *testing.T) {
	dir := t.TempDir()
	certPEM, _, _ := selfSigned(t, "x")
	_, otherKey, _ := selfSigned(t, "y")
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certPath, certPEM)
	replaceFile(t, keyPath, otherKey)
	cases := []struct {
		name       string
		cert, key  string
		wantSubstr string
	}{
		{"mismatched pair", certPath, keyPath, "private key does not match public key"},
		{"missing key file", certPath, filepath.Join(dir, "none.pem"), "no such file"},
		{"cert without key", certPath, "", "tls_cert and tls_key: set both or neither"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := servertest.Config()
			cfg.TLSCert, cfg.TLSKey = c.cert, c.key
			_, err := newServer(cfg)
			if err == nil || !strings.Contains(err.Error(), c.wantSubstr) {
				t.Fatalf("err = %v, want it to contain %q", err, c.wantSubstr)
			}
		})
	}
}
