package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/store/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// A stored blob's GET answers 307 to a presigned URL of the bucket, which
// serves the exact bytes (and a Range of them); a blob not stored yet is
// streamed while it fills; a client in redirect.direct is served by the
// replica; and go-containerregistry's client pulls through the redirects.
func TestRedirectToBucket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an S3 server and a replica")
	}
	bucket := s3test.Start(t)
	bin := build(t)
	o := newClusterOrigin(t)
	img := o.push(t, "app", "1", 1<<20, 2)
	r := startReplica(t, bin, bucket, func(*replica) string {
		return fmt.Sprintf(`upstreams:
  - name: docker.io
    url: %s
prefetch: 0
redirect:
  enabled: true
  expiry: 2m
  clients: [127.0.0.0/8]
  direct: [127.0.0.2/32]
`, o.URL)
	})
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := layers[0].Digest()
	want := originBlob(t, o, "app", ld.String())
	blobURL := "http://" + r.addr + "/v2/docker.io/library/app/blobs/" + ld.String()

	// from dials the replica from the loopback address local.
	from := func(local string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		return &http.Client{
			Transport:     &http.Transport{DialContext: d.DialContext},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	get := func(c *http.Client, u string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	body := func(resp *http.Response) []byte {
		t.Helper()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// Cold: streamed while it fills, never redirected.
	if resp := get(from("127.0.0.1"), blobURL); resp.StatusCode != http.StatusOK || !bytes.Equal(body(resp), want) {
		t.Fatalf("cold GET: %s, want 200 and the blob", resp.Status)
	}
	eventually(t, "the blob in the bucket", func() bool {
		return get(from("127.0.0.1"), blobURL).StatusCode == http.StatusTemporaryRedirect
	})

	// Stored: 307 to the bucket, whose URL serves the bytes and a range.
	resp := get(from("127.0.0.1"), blobURL)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusTemporaryRedirect || "http://"+loc.Host != bucket.Endpoint ||
		resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Fatalf("warm GET: %s, Location %q, Docker-Content-Digest %q; want 307 to %s", resp.Status, resp.Header.Get("Location"), resp.Header.Get("Docker-Content-Digest"), bucket.Endpoint)
	}
	if q := loc.Query(); q.Get("X-Amz-Expires") != "120" || q.Get("X-Amz-Signature") == "" {
		t.Errorf("presigned URL %s: want X-Amz-Expires=120 and a signature", loc.Redacted())
	}
	if got := body(get(http.DefaultClient, loc.String())); !bytes.Equal(got, want) {
		t.Fatalf("the presigned URL served %d bytes hashing to %s, want the blob", len(got), digest.FromBytes(got))
	}
	ranged := get(http.DefaultClient, blobURL, "Range", "bytes=1000-1999") // followed
	if got := body(ranged); ranged.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want[1000:2000]) {
		t.Fatalf("a Range through the redirect: %s, %d bytes", ranged.Status, len(got))
	}

	// redirect.direct wins over redirect.clients: served by the replica.
	if resp := get(from("127.0.0.2"), blobURL); resp.StatusCode != http.StatusOK || !bytes.Equal(body(resp), want) {
		t.Fatalf("GET from a direct network: %s, want 200 and the blob", resp.Status)
	}

	// A real client pulls every layer through the redirects.
	if err := r.pull("docker.io", "app", "1"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(r.p.Output(), "status=307"); n < 3 {
		t.Errorf("%d answers were redirects; want the client's blob GETs among them", n)
	}
}

// originBlob reads a blob straight from the origin.
func originBlob(t *testing.T, o *clusterOrigin, repo, d string) []byte {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, o.URL+"/v2/library/"+repo+"/blobs/"+d, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("origin blob %s: %v %v", d, resp.Status, err)
	}
	return b
}
