package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/eddyrt/eddy/internal/outbox"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/eddyrt/eddy/internal/config"
)

// newTLSConfig returns the listeners' TLS configuration: certificates from
// tls_cert/tls_key, reloaded when the files change, or from an ACME CA for
// acme_domains; nil when neither is set (plain listeners).
func newTLSConfig(cfg config.Config, log *slog.Logger) (*tls.Config, error) {
	switch {
	case cfg.TLSCert != "":
		r := &certReloader{certPath: cfg.TLSCert, keyPath: cfg.TLSKey, log: log}
		if err := r.load(); err != nil {
			return nil, err
		}
		return &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: r.get,
			// HTTP/1.1 only: a WebSocket upgrade hijacks the connection,
			// which an HTTP/2 stream cannot be.
			NextProtos: []string{"http/1.1"},
		}, nil
	case len(cfg.ACMEDomains) > 0:
		return acmeTLSConfig(cfg)
	}
	return nil, nil
}

// wrapTLS makes ln serve TLS when the server has certificates. Each TLS
// connection runs over a non-blocking outbox.Socket, as plain ones do in
// upgrade, so a TLS peer that stops reading also keeps its encrypted bytes
// to itself and never holds a shared writer.
func (s *Server) wrapTLS(ln net.Listener) net.Listener {
	if s.tls == nil {
		return ln
	}
	return &tlsListener{Listener: ln, config: s.tls}
}

type tlsListener struct {
	net.Listener
	config *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if sock, ok := outbox.NewSocket(c, writeTimeout); ok {
		c = sock
	}
	return tls.Server(c, l.config), nil
}

// socketUnder returns the non-blocking socket a connection writes through:
// c itself, or the one under a TLS connection; ok is false when writes
// block (then bounded by writeTimeout).
func socketUnder(c net.Conn) (*outbox.Socket, bool) {
	if tc, isTLS := c.(*tls.Conn); isTLS {
		sock, ok := tc.NetConn().(*outbox.Socket)
		return sock, ok
	}
	return nil, false
}

// certReloader serves a certificate from files and loads them again when
// either changes, so renewing a certificate needs no restart. It looks at
// the files on every handshake (two stat calls, microseconds): a renewed
// certificate is served from the next handshake on.
type certReloader struct {
	certPath, keyPath string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat os.FileInfo
	keyStat  os.FileInfo
}

// load reads the pair; at start a failure is fatal, later the previous
// certificate stays in service until the files load again.
func (r *certReloader) load() error {
	cs, err1 := os.Stat(r.certPath)
	ks, err2 := os.Stat(r.keyPath)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("tls_cert/tls_key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certPath, r.keyPath)
	if err != nil {
		return fmt.Errorf("tls_cert %s / tls_key %s: %w", r.certPath, r.keyPath, err)
	}
	r.cert, r.certStat, r.keyStat = &cert, cs, ks
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs, err1 := os.Stat(r.certPath)
	ks, err2 := os.Stat(r.keyPath)
	if err1 != nil || err2 != nil || (sameFile(cs, r.certStat) && sameFile(ks, r.keyStat)) {
		// Unchanged, or in the middle of being replaced: keep serving.
		return r.cert, nil
	}
	if err := r.load(); err != nil {
		// Often the certificate is written before its key: the pair
		// mismatches until both are in place. Remember these versions so
		// the files are read again only when they change again.
		r.certStat, r.keyStat = cs, ks
		r.log.Warn("TLS certificate files changed but do not load; serving the previous certificate", "err", err)
		return r.cert, nil
	}
	r.log.Info("TLS certificate reloaded", "cert", r.certPath)
	return r.cert, nil
}

// sameFile reports whether a and b describe the same unchanged file: same
// inode (a rename over it changes that), size and modification time.
func sameFile(a, b os.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// acmeTLSConfig gets certificates for acme_domains from an ACME CA
// (Let's Encrypt unless acme_ca is set) with the TLS-ALPN-01 challenge,
// answered on the listener itself, and keeps them and the account key in
// data_dir/acme so a restart does not ask the CA again.
func acmeTLSConfig(cfg config.Config) (*tls.Config, error) {
	dir := filepath.Join(cfg.DataDir, "acme")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme cache: %w", err)
	}
	client := &acme.Client{DirectoryURL: cfg.ACMECA}
	if client.DirectoryURL == "" {
		client.DirectoryURL = autocert.DefaultACMEDirectory
	}
	if cfg.ACMECARoot != "" {
		pemBytes, err := os.ReadFile(cfg.ACMECARoot)
		if err != nil {
			return nil, fmt.Errorf("acme_ca_root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("acme_ca_root %s: no PEM certificate in it", cfg.ACMECARoot)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.HTTPClient = &http.Client{Transport: tr, Timeout: time.Minute}
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(cfg.ACMEDomains...),
		Email:      cfg.ACMEEmail,
		Client:     client,
	}
	tc := m.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	tc.NextProtos = []string{"http/1.1", acme.ALPNProto}
	return tc, nil
}
