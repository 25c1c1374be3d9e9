// Package tlsx is the listener's TLS: the certificate, its key and the
// client authorities read from files and read again when the files
// change, so that a renewed certificate (cert-manager, certbot) is served
// without a restart.
package tlsx

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/config"
)

// recheck is how often, at most, the files are looked at again: on a
// handshake, when this long has passed since the last look.
const recheck = time.Second

// Files serves the TLS files of a configuration.
type Files struct {
	cfg config.TLS
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex // protects the fields below
	checked time.Time
	stamp   string // the files' sizes and times when last loaded
	cert    *tls.Certificate
	clients *x509.CertPool
}

// Load reads the files of cfg; an error names the file that failed.
func Load(cfg config.TLS, log *slog.Logger) (*Files, error) {
	f := &Files{cfg: cfg, log: log, now: time.Now}
	if err := f.load(); err != nil {
		return nil, err
	}
	f.checked = f.now()
	return f, nil
}

// Config is the server's TLS configuration: TLS 1.2 at least, HTTP/2
// offered, the certificate of the moment, and client certificates
// required when a client authority is configured.
func (f *Files) Config() *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	base.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		cert, _ := f.current()
		return cert, nil
	}
	if f.cfg.ClientCA == "" {
		return base
	}
	// The pool is per handshake, so that a changed file takes effect.
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		_, pool := f.current()
		c := base.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
		return c, nil
	}
	return base
}

// current returns the certificate and client pool, reading the files
// again first when they changed since they were read. A file that fails
// to load keeps the previous ones in service, and is logged.
func (f *Files) current() (*tls.Certificate, *x509.CertPool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := f.now(); now.Sub(f.checked) >= recheck {
		f.checked = now
		if stamp := f.stampOf(); stamp != f.stamp {
			if err := f.load(); err != nil {
				f.log.Warn("TLS files changed but do not load: serving the previous certificate", "err", err)
			} else {
				f.log.Info("TLS files reloaded", "cert", f.cfg.Cert, "not_after", f.cert.Leaf.NotAfter)
			}
		}
	}
	return f.cert, f.clients
}

// load reads the files; f.mu is held (or f is not shared yet).
func (f *Files) load() error {
	stamp := f.stampOf()
	cert, err := tls.LoadX509KeyPair(f.cfg.Cert, f.cfg.Key)
	if err != nil {
		return fmt.Errorf("tls.cert %s, tls.key %s: %w", f.cfg.Cert, f.cfg.Key, err)
	}
	var pool *x509.CertPool
	if f.cfg.ClientCA != "" {
		if pool, err = config.LoadCertPool(f.cfg.ClientCA); err != nil {
			return fmt.Errorf("tls.client_ca: %w", err)
		}
	}
	f.cert, f.clients, f.stamp = &cert, pool, stamp
	return nil
}

// stampOf sums up the files' sizes and modification times: any change
// of one, a rename over it included, changes the stamp.
func (f *Files) stampOf() string {
	var s string
	for _, path := range []string{f.cfg.Cert, f.cfg.Key, f.cfg.ClientCA} {
		if path == "" {
			continue
		}
		if fi, err := os.Stat(path); err == nil {
			s += fmt.Sprintf("%d:%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			s += "missing;"
		}
	}
	return s
}

// NotAfter is when the certificate in service expires.
func (f *Files) NotAfter() time.Time {
	cert, _ := f.current()
	return cert.Leaf.NotAfter
}
