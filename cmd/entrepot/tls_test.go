package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/entrepot/entrepot/internal/tlsx/tlstest"
)

// serve --tls-cert --tls-key: a real pull over HTTPS with HTTP/2, a plain
// HTTP request refused, and a certificate renewed on disk served without
// a restart.
func TestServeTLS(t *testing.T) {
	bin := build(t)
	o := newOrigin(t)
	o.push(t, 1)
	ca := tlstest.NewCA(t, "test")
	cert, key := ca.Server(t, "entrepot")
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--admin-listen", "127.0.0.1:0", "--data", t.TempDir(),
		"--upstream", "docker.io="+o.URL, "--tls-cert", cert, "--tls-key", key)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	base := "https://" + addr
	deadline := time.Now().Add(15 * time.Second)
	var resp *http.Response
	var err error
	for {
		resp, err = client.Get(base + "/v2/")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GET /v2/ over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Fatalf("GET /v2/ over TLS: %d %s; want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	first := resp.TLS.PeerCertificates[0].SerialNumber

	ref, err := name.ParseReference(addr + "/docker.io/library/app:img0")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithTransport(tr))
	if err != nil {
		t.Fatalf("pull over TLS: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pull over TLS: %v", err)
	}

	plain, err := http.Get("http://" + addr + "/v2/")
	if err == nil {
		body, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
			t.Errorf("plain HTTP to the TLS listener: %d %q; want 400", plain.StatusCode, body)
		}
	}

	ca.Server(t, "entrepot") // renewed in place
	for {
		tr.CloseIdleConnections()
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("after renewal: %v", err)
		}
		resp.Body.Close()
		if resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first) != 0 {
			break
		}
		if time.Now().After(deadline.Add(15 * time.Second)) {
			t.Fatal("the renewed certificate was not served")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
