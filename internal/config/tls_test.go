package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/tlsx/tlstest"
)

// The tls section and --tls-cert/--tls-key: the flags win over the file;
// a pair that does not load, half a pair, or a client CA without TLS is an
// error naming the key or flag.
func TestParseTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	cert, key := ca.Server(t, "server")
	cert2, key2 := ca.Server(t, "other")
	file := fmt.Sprintf("tls:\n  cert: %s\n  key: %s\n  client_ca: %s\n", cert, key, ca.File)

	cfg, _, err := setup{file: file}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if want := (TLS{Cert: cert, Key: key, ClientCA: ca.File}); cfg.TLS != want || !cfg.TLS.Enabled() {
		t.Fatalf("from the file: %+v; want %+v", cfg.TLS, want)
	}
	cfg, _, err = setup{file: file, args: []string{"--tls-cert", cert2, "--tls-key", key2}}.parse(t)
	if err != nil || cfg.TLS.Cert != cert2 || cfg.TLS.Key != key2 {
		t.Fatalf("flags over the file: %+v %v", cfg.TLS, err)
	}
	if cfg, _, err := (setup{}).parse(t); err != nil || cfg.TLS.Enabled() {
		t.Fatalf("by default: %+v %v; want plain HTTP", cfg.TLS, err)
	}

	for _, tc := range []struct {
		setup
		want string
	}{
		{setup{args: []string{"--tls-cert", cert}}, "--tls-cert: set without tls.key"},
		{setup{args: []string{"--tls-key", key}}, "--tls-key: set without tls.cert"},
		{setup{file: "tls:\n  client_ca: " + ca.File + "\n"}, "tls.client_ca: set without tls.cert"},
		{setup{args: []string{"--tls-cert", cert, "--tls-key", key2}}, "--tls-cert, --tls-key: tls: private key does not match public key"},
		{setup{args: []string{"--tls-cert", cert, "--tls-key", "/nonexistent/key.pem"}}, "no such file"},
		{setup{file: fmt.Sprintf("tls:\n  cert: %s\n  key: %s\n  client_ca: %s\n", cert, key, key)}, "tls.client_ca: " + key + " holds no PEM certificate"},
	} {
		_, _, err := tc.parse(t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want an error with %q", tc.setup, err, tc.want)
		}
	}
}
