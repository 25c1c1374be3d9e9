package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/testenv"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const (
	ciToken     = "ci-token-0123456789abcdef"
	readerToken = "reader-token-0123456789ab"
)

// startRegion starts an Entrepot in front of the private registry at
// origin, which takes pushes: ci may push to local/team/*, everyone
// signed in may pull.
func startRegion(t *testing.T, bin, origin string) *replica {
	r := &replica{addr: freeAddr(t), admin: freeAddr(t)}
	conf := fmt.Sprintf(`listen: %s
data: %s
admin:
  listen: %s
upstreams:
  - name: registry.test
    url: %s
    ttl: 1h
    push: true
auth:
  tokens_env: TOKENS
access:
  - users: [ci]
    repos: [registry.test/team/*]
    actions: [pull, push]
  - users: ["*"]
    repos: ["*"]
    actions: [pull]
`, r.addr, t.TempDir(), r.admin, origin)
	path := filepath.Join(t.TempDir(), "entrepot.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.p = testenv.Start(t, bin, []string{"serve", "--config", path},
		[]string{"TOKENS=ci:" + ciToken + ",reader:" + readerToken},
		func() error {
			if s := r.readyz(); !strings.HasPrefix(s, "ok") {
				return fmt.Errorf("readyz: %s", s)
			}
			return nil
		})
	return r
}

func as(user, token string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: user, Password: token})
}

// One hostname for pulls and pushes, in two regions: an image pushed
// through region A reaches the private registry whole; pulling it back
// through A asks the registry nothing (write-through); region B pulls it
// with one request per blob and manifest; a client without push, or
// without credentials, sends nothing to the registry.
func TestPushTwoRegions(t *testing.T) {
	bin := build(t)
	o := newClusterOrigin(t)
	a, b := startRegion(t, bin, o.URL), startRegion(t, bin, o.URL)
	img, err := random.Image(512<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	refIn := func(r *replica, repo string) name.Reference {
		ref, err := name.ParseReference(r.addr+"/registry.test/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	uploads := func() int {
		o.mu.Lock()
		defer o.mu.Unlock()
		n := 0
		for k, v := range o.requests {
			if strings.Contains(k, "/blobs/uploads") || strings.HasPrefix(k, "PUT ") {
				n += v
			}
		}
		return n
	}

	// Refused by the cache: nothing reaches the registry. (The client
	// goes through the token flow, whose token lacks push: 401.)
	refused := func(err error) bool {
		return err != nil && (strings.Contains(err.Error(), "UNAUTHORIZED") || strings.Contains(err.Error(), "DENIED") || strings.Contains(err.Error(), "401 Unauthorized"))
	}
	if err := remote.Write(refIn(a, "team/app:1"), img, as("reader", readerToken)); !refused(err) {
		t.Fatalf("a push by a user without push: %v, want it refused", err)
	}
	if err := remote.Write(refIn(a, "team/app:1"), img); !refused(err) {
		t.Fatalf("an anonymous push: %v, want it refused", err)
	}
	if err := remote.Write(refIn(a, "other/app:1"), img, as("ci", ciToken)); !refused(err) {
		t.Fatalf("a push outside ci's rule: %v, want it refused", err)
	}
	if n := uploads(); n != 0 {
		t.Fatalf("refused pushes sent %d requests to the registry", n)
	}

	if err := remote.Write(refIn(a, "team/app:1"), img, as("ci", ciToken)); err != nil {
		t.Fatalf("push through region A: %v", err)
	}
	direct, err := name.ParseReference(strings.TrimPrefix(o.URL, "http://")+"/team/app:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	at, err := remote.Image(direct)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := at.Digest(); d != want {
		t.Fatalf("the registry holds %s, want %s", d, want)
	}

	// Write-through: region A pulls it back from its store.
	content := func() int {
		o.mu.Lock()
		defer o.mu.Unlock()
		n := 0
		for k, v := range o.requests {
			if (strings.HasPrefix(k, "GET ") || strings.HasPrefix(k, "HEAD ")) && (strings.Contains(k, "/manifests/") || strings.Contains(k, "/blobs/sha256")) {
				n += v
			}
		}
		return n
	}
	before := content()
	pullAs := func(r *replica) {
		t.Helper()
		got, err := remote.Image(refIn(r, "team/app:1"), as("reader", readerToken))
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(got); err != nil {
			t.Fatal(err)
		}
		if d, _ := got.Digest(); d != want {
			t.Fatalf("pulled %s, want %s", d, want)
		}
	}
	pullAs(a)
	if n := content() - before; n != 0 {
		t.Fatalf("the pull through region A after its push asked the registry %d times, want 0", n)
	}

	// Region B: one request per blob, and one for its tag (a GET of a tag
	// never seen, which brings the manifest).
	before = content()
	pullAs(b)
	pullAs(b)
	m, _ := img.Manifest()
	if n, want := content()-before, 1+len(m.Layers)+1; n != want {
		t.Errorf("two pulls through region B asked the registry %d times, want %d (the tag's manifest, each blob once)", n, want)
	}
}
