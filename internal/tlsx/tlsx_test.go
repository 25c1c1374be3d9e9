package tlsx

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/tlsx/tlstest"
)

// server is an HTTPS server on a Files' configuration, as serve runs
// one, answering with the protocol the request came in.
type server struct {
	URL  string
	addr string
}

func serve(t *testing.T, f *Files) server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: f.Config(), ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Proto))
	})}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return server{URL: "https://" + ln.Addr().String(), addr: ln.Addr().String()}
}

// dial handshakes with addr, trusting pool, and returns the server's
// certificate; config adjusts the client.
func dial(addr string, pool *x509.CertPool, config func(*tls.Config)) (*x509.Certificate, error) {
	c := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if config != nil {
		config(c)
	}
	conn, err := tls.Dial("tcp", addr, c)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		return nil, err
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

// A certificate renewed on disk is served from the next handshake after
// the recheck interval, without a restart; files that do not load keep
// the previous certificate in service.
func TestReloadsChangedFiles(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	certFile, keyFile := ca.Server(t, "server")
	f, err := Load(config.TLS{Cert: certFile, Key: keyFile}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.now = func() time.Time { return now }
	srv := serve(t, f)
	addr := srv.addr
	first, err := dial(addr, ca.Pool(), nil)
	if err != nil {
		t.Fatal(err)
	}

	ca.Server(t, "server") // renewed: a new key and serial, same files
	if got, _ := dial(addr, ca.Pool(), nil); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("files looked at again before the recheck interval")
	}
	now = now.Add(recheck)
	renewed, err := dial(addr, ca.Pool(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the renewed certificate is not served")
	}

	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(recheck)
	kept, err := dial(addr, ca.Pool(), nil)
	if err != nil {
		t.Fatalf("a broken key file stopped TLS: %v", err)
	}
	if kept.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Fatal("a broken key file replaced the certificate in service")
	}
}

// TLS 1.2 at least; HTTP/2 when the client offers it, HTTP/1.1 else.
func TestVersionsAndProtocols(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	certFile, keyFile := ca.Server(t, "server")
	f, err := Load(config.TLS{Cert: certFile, Key: keyFile}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, f)
	if _, err := dial(srv.addr, ca.Pool(), func(c *tls.Config) { c.MaxVersion = tls.VersionTLS11 }); err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]; resp.Proto != want {
			t.Errorf("offering h2 %v: %s; want %s", h2, resp.Proto, want)
		}
		tr.CloseIdleConnections()
	}
}

// With tls.client_ca, a client without a certificate, or with one of
// another authority, is refused at the handshake; one of the configured
// authority is let in.
func TestClientCertificates(t *testing.T) {
	ca, clients, other := tlstest.NewCA(t, "server"), tlstest.NewCA(t, "clients"), tlstest.NewCA(t, "other")
	certFile, keyFile := ca.Server(t, "server")
	f, err := Load(config.TLS{Cert: certFile, Key: keyFile, ClientCA: clients.File}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, f)
	get := func(cert *tls.Certificate) error {
		c := &tls.Config{RootCAs: ca.Pool()}
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: c}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	good, stranger := clients.Client(t, "ci-runner"), other.Client(t, "stranger")
	if err := get(nil); err == nil {
		t.Error("a client without a certificate got in")
	}
	if err := get(&stranger); err == nil {
		t.Error("a client certificate of another authority got in")
	}
	if err := get(&good); err != nil {
		t.Errorf("a client certificate of the configured authority: %v", err)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	certFile, _ := ca.Server(t, "server")
	_, err := Load(config.TLS{Cert: certFile, Key: certFile}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "tls.key") {
		t.Fatalf("a certificate as its own key: %v", err)
	}
}
