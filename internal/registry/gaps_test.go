package registry_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// withoutReferrersAPI makes the origin answer the referrers API as CNCF
// Distribution does, which lacks it: 404.
func withoutReferrersAPI(w http.ResponseWriter, r *http.Request) bool {
	if endpoint(r.URL.Path) != "referrers" {
		return false
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte("404 page not found\n"))
	return true
}

// An upstream without the referrers API: the cache still answers 200 (a
// registry with the API must never answer 404), from the referrers tag
// schema when the tag exists and with an empty index when it does not;
// the answer is filtered by artifactType and cached for the TTL.
func TestReferrersFromTagSchema(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "team/app:1", 100, 1)
	bare := push(t, o, "team/app:2", 100, 1)
	subject, _ := partial(img)
	var adds []mutate.IndexAddendum
	for _, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		art := mutate.Subject(mutate.ConfigMediaType(mutate.MediaType(mustRandom(t), types.OCIManifestSchema1), types.MediaType(at)), subject).(v1.Image)
		d, _ := partial(art)
		d.ArtifactType = at
		adds = append(adds, mutate.IndexAddendum{Add: art, Descriptor: d})
	}
	fallback := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	tag := strings.Replace(subject.Digest.String(), ":", "-", 1)
	ref, _ := name.ParseReference(o.host()+"/team/app:"+tag, name.Insecure)
	if err := remote.WriteIndex(ref, fallback); err != nil {
		t.Fatal(err)
	}
	o.setFault(withoutReferrersAPI)
	c := newCache(t, o, options{ttl: time.Hour})
	o.reset()

	checkReferrers(t, c, "/v2/ghcr.io/team/app/referrers/"+subject.Digest.String())
	// One referrers request, one HEAD of the tag, one GET of its index:
	// then the answer is cached.
	if o.count("GET referrers") != 1 || o.count("HEAD manifests") != 1 || o.count("GET manifests") != 1 || o.total() != 3 {
		t.Fatalf("upstream requests = %v, want 1 referrers GET, 1 HEAD and 1 GET of the tag", o.counts)
	}

	// Nothing refers to the other image: an empty index, not a 404.
	bareDigest := digestOf(t, bare)
	resp, body := c.do(t, "GET", "/v2/ghcr.io/team/app/referrers/"+bareDigest)
	var idx v1.IndexManifest
	if json.Unmarshal(body, &idx) != nil || resp.StatusCode != 200 || len(idx.Manifests) != 0 || idx.MediaType != types.OCIImageIndex {
		t.Fatalf("referrers of an image without any: %d %s", resp.StatusCode, body)
	}
}

// A black-holed upstream (it accepts connections and never answers) fails
// an uncached request within 10 s with the default timeouts, and the error
// names the upstream.
func TestBlackHoleWithDefaultTimeouts(t *testing.T) {
	o := newOrigin(t)
	c := newCache(t, o, options{url: blackHole(t), defaultTimeouts: true})
	start := time.Now()
	resp, body := c.do(t, "GET", "/v2/library/alpine/manifests/3")
	took := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), `upstream \"docker.io\"`) {
		t.Fatalf("uncached pull from a black hole: %d %s", resp.StatusCode, body)
	}
	if took >= 10*time.Second {
		t.Fatalf("uncached pull from a black hole failed after %v, want under 10s", took)
	}
}

// dnsFailure is a transport whose every dial fails as a DNS lookup does,
// naming the resolver: no request leaves the machine.
type dnsFailure struct{ *http.Transport }

func newDNSFailure() dnsFailure {
	return dnsFailure{&http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{
			Err: "no such host", Name: host, Server: "10.96.0.10:53", IsNotFound: true,
		}}
	}}}
}

// Error bodies say what failed in words, never the cache's network
// internals (a resolver's address), and quote no more than a bounded
// prefix of what the client sent.
func TestErrorBodiesAreBoundedAndDiscreet(t *testing.T) {
	o := newOrigin(t)
	c := newCache(t, o, options{transport: newDNSFailure()})
	resp, body := c.do(t, "GET", "/v2/library/alpine/manifests/3")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `upstream \"docker.io\"`) ||
		!strings.Contains(string(body), "DNS lookup failed") || strings.Contains(string(body), "10.96.0.10") {
		t.Fatalf("DNS failure: %d %s", resp.StatusCode, body)
	}

	long := strings.Repeat("a", 100_000)
	for _, path := range []string{
		"/v2/" + long + "/manifests/latest",
		"/v2/library/x/manifests/" + long,
		"/v2/library/x/blobs/sha256:" + long,
		"/v2/" + long,
	} {
		resp, body := c.do(t, "GET", path)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || len(body) > 2048 {
			t.Errorf("GET %.40s...: %d with a %d-byte body, want a 4xx of at most 2 KiB", path, resp.StatusCode, len(body))
		}
	}
}

// An answer routed by containerd's ?ns= echoes it in OCI-Namespace; one
// routed by the path prefix does not.
func TestOCINamespace(t *testing.T) {
	o := newOrigin(t)
	push(t, o, "library/alpine:3", 100, 1)
	c := newCache(t, o, options{ttl: time.Hour})
	for _, tc := range []struct{ path, want string }{
		{"/v2/library/alpine/manifests/3?ns=docker.io", "docker.io"},
		{"/v2/library/alpine/manifests/3?ns=" + o.host(), o.host()},
		{"/v2/docker.io/library/alpine/manifests/3", ""},
		{"/v2/docker.io/library/alpine/manifests/3?ns=ghcr.io", ""}, // the prefix decided
		{"/v2/library/nope/manifests/3?ns=docker.io", "docker.io"},  // errors too
	} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, _ := c.do(t, method, tc.path)
			if got := resp.Header.Get("OCI-Namespace"); got != tc.want {
				t.Errorf("%s %s: OCI-Namespace %q, want %q (status %d)", method, tc.path, got, tc.want, resp.StatusCode)
			}
		}
	}
}
