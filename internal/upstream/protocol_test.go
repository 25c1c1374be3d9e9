package upstream

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// The registry-level calls against a real registry (go-containerregistry's,
// in-process): each returns what the registry said, as descriptors and
// bodies.
func TestProtocol(t *testing.T) {
	reg := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	img, err := random.Image(5000, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(strings.TrimPrefix(reg.URL, "http://")+"/library/x:1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	md, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	lsize, _ := layers[0].Size()
	mdg, ldg := digest.Digest(md.String()), digest.Digest(ld.String())

	c, _, _ := newTestClient(t, reg.URL, nil, nil)
	ctx := context.Background()

	desc, err := c.Resolve(ctx, "library/x", "1")
	if err != nil || desc.Digest != mdg || desc.MediaType != oci.MediaTypeDockerManifest || desc.Size != int64(len(raw)) {
		t.Fatalf("Resolve = %+v, %v; want %s of %d bytes", desc, err, mdg, len(raw))
	}
	body, desc, err := c.Manifest(ctx, "library/x", mdg.String())
	if err != nil || string(body) != string(raw) || desc.Digest != mdg || desc.Size != int64(len(raw)) {
		t.Fatalf("Manifest = %d bytes, %+v, %v", len(body), desc, err)
	}
	if size, err := c.StatBlob(ctx, "library/x", ldg); err != nil || size != lsize {
		t.Fatalf("StatBlob = %d, %v; want %d", size, err, lsize)
	}
	rc, n, err := c.OpenBlob(ctx, "library/x", ldg, 100)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(rc)
	rc.Close()
	whole, _ := layers[0].Compressed()
	all, _ := io.ReadAll(whole)
	if n != lsize-100 || string(rest) != string(all[100:]) {
		t.Fatalf("OpenBlob from 100 = %d bytes (announced %d), want %d", len(rest), n, lsize-100)
	}
	if tags, _, err := c.Tags(ctx, "library/x", nil); err != nil || !strings.Contains(string(tags), `"1"`) {
		t.Fatalf("Tags = %s, %v", tags, err)
	}

	// Definite answers are oci.ErrNotFound; a missing referrers API is
	// oci.ErrUnsupported (this registry is built without it).
	if _, err := c.Resolve(ctx, "library/x", "nope"); !errors.Is(err, oci.ErrNotFound) {
		t.Errorf("Resolve of a missing tag = %v, want ErrNotFound", err)
	}
	if _, err := c.StatBlob(ctx, "library/x", digest.FromString("nope")); !errors.Is(err, oci.ErrNotFound) {
		t.Errorf("StatBlob of a missing blob = %v, want ErrNotFound", err)
	}
	if _, err := c.Referrers(ctx, "library/x", mdg); !errors.Is(err, oci.ErrUnsupported) {
		t.Errorf("Referrers without the API = %v, want ErrUnsupported", err)
	}
	if c.Failing() {
		t.Error("definite answers put the upstream in its quiet period")
	}
}

// A registry that announces another digest than the one asked for, or a
// manifest over the size limit, is refused.
func TestProtocolRefusesBadAnswers(t *testing.T) {
	asked := digest.FromString("asked")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/big"):
			w.Header().Set("Content-Length", "5000000")
			w.Header().Set("Content-Type", oci.MediaTypeImageManifest)
		default:
			w.Header().Set("Docker-Content-Digest", digest.FromString("other").String())
			w.Header().Set("Content-Type", oci.MediaTypeImageManifest)
			w.Header().Set("Content-Length", "2")
		}
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
	}))
	defer srv.Close()
	c, _, _ := newTestClient(t, srv.URL, nil, nil)
	ctx := context.Background()
	if _, err := c.Resolve(ctx, "x", asked.String()); !errors.Is(err, oci.ErrDigestMismatch) {
		t.Errorf("Resolve with another digest announced = %v, want ErrDigestMismatch", err)
	}
	if _, err := c.StatBlob(ctx, "x", asked); !errors.Is(err, oci.ErrDigestMismatch) {
		t.Errorf("StatBlob with another digest announced = %v, want ErrDigestMismatch", err)
	}
	if _, _, err := c.Manifest(ctx, "x", "big"); !errors.Is(err, oci.ErrTooLarge) {
		t.Errorf("Manifest over the limit = %v, want ErrTooLarge", err)
	}
}

// One health record: a failure of the upstream's own (5xx, no answer)
// starts the quiet period, a success ends it, a 429 blocks it until its
// Retry-After, on the client's clock; a request its caller gave up on
// says nothing of the upstream.
func TestHealth(t *testing.T) {
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "30")
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	c, clock, _ := newTestClient(t, srv.URL, nil, nil)
	ctx := context.Background()

	c.Resolve(ctx, "x", "1")
	if !c.Failing() {
		t.Fatal("a 503 did not start the quiet period")
	}
	clock.Advance(quietPeriod + time.Second)
	if c.Failing() {
		t.Fatal("the quiet period outlasted its length")
	}
	c.Resolve(ctx, "x", "1")
	status = http.StatusOK
	c.Resolve(ctx, "x", "1")
	if c.Failing() {
		t.Fatal("a success did not end the quiet period")
	}
	status = http.StatusTooManyRequests
	c.Resolve(ctx, "x", "1")
	if until := c.Health().BlockedUntil(); !c.Failing() || !until.Equal(clock.Now().Add(30*time.Second)) {
		t.Fatalf("after a 429: failing %v, blocked until %v", c.Failing(), until)
	}
	clock.Advance(31 * time.Second)
	status = http.StatusOK
	c.Resolve(ctx, "x", "1")
	if c.Failing() {
		t.Fatal("still failing after the block and a success")
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	c.Resolve(cancelled, "x", "1")
	if c.Failing() {
		t.Fatal("a request its caller cancelled started the quiet period")
	}
}

// A transport failure reads, for the client of the cache, in words: no
// resolver address, no port.
func TestPublicErrorsSayWhatFailed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "registry-1.docker.io", Server: "10.96.0.10:53"}}, "DNS lookup failed"},
		{&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, Err: errors.New("connect: connection refused")}, "connection failed"},
		{context.DeadlineExceeded, "timed out"},
		{errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), "TLS handshake failed"},
	} {
		e := &Error{Upstream: "docker.io", Err: tc.err}
		got := e.Public()
		if got != `upstream "docker.io": `+tc.want || strings.Contains(got, "10.") {
			t.Errorf("Public of %v = %q, want %q", tc.err, got, tc.want)
		}
		if !strings.Contains(e.Error(), tc.err.Error()) {
			t.Errorf("Error of %v = %q: the log loses the detail", tc.err, e.Error())
		}
	}
}
