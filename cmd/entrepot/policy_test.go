package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// serve applies the upstreams' approved-images policies: an approved
// image pulls, another is refused with 403 DENIED naming the policy, and
// the origin is never asked for it.
func TestServeApprovedOnly(t *testing.T) {
	bin := build(t)
	o := newOrigin(t)
	o.push(t, 1)
	addr := freeAddr(t)
	conf := filepath.Join(t.TempDir(), "entrepot.yaml")
	yaml := fmt.Sprintf("listen: %s\ndata: %s\nadmin:\n  listen: 127.0.0.1:0\nupstreams:\n  - name: docker.io\n    url: %s\n    approved_only: true\n    allow: [\"library/app:img*\"]\n",
		addr, t.TempDir(), o.URL)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", conf)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHTTP(t, "http://"+addr+"/healthz")
	s := &server{addr: addr}
	if err := s.pull("img0"); err != nil {
		t.Fatalf("approved image: %v", err)
	}
	before := o.getCount()
	resp, err := http.Get("http://" + addr + "/v2/docker.io/library/other/manifests/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "DENIED") || !strings.Contains(string(body), "approved_only") {
		t.Fatalf("unapproved image: %d %s", resp.StatusCode, body)
	}
	if n := o.getCount() - before; n != 0 {
		t.Fatalf("the origin was asked %d times for an unapproved image", n)
	}
}
