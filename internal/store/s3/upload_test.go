package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/s3"
	"github.com/entrepot/entrepot/internal/store/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// pseudoRandom returns n bytes that do not compress, the same for a seed.
func pseudoRandom(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// writeSmall writes b to w as a fill does, in small writes.
func writeSmall(t *testing.T, w io.Writer, b []byte) {
	t.Helper()
	for chunk := range slices.Chunk(b, 64<<10) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
}

// streaming opens a store that announces each part it has sent, by the
// key of its object, on the channel returned.
func streaming(t *testing.T, cfg s3.Config, prefix string) (*replica, <-chan string) {
	t.Helper()
	r := open(t, cfg, prefix)
	parts := make(chan string, 64)
	s3.SetPartHook(r.Bucket, func(key string, _ int) { parts <- key })
	return r, parts
}

// waitPart waits until a part of key has been sent.
func waitPart(parts <-chan string, key string) {
	for k := range parts {
		if k == key {
			return
		}
	}
}

func blobKey(prefix string, d digest.Digest) string {
	return prefix + "blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded()
}

// A blob of more than three parts, written in small writes to a file
// created for it, is uploaded while it is written but invisible until
// Commit, and exact after it, read whole or from any offset.
func TestStreamedUpload(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	r, parts := streaming(t, cfg, "")
	blob := pseudoRandom(3*s3.PartSize+2<<20, 1) // 50 MiB: three parts and a short one
	d := digest.FromBytes(blob)
	f, err := r.Spool.Create(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	writeSmall(t, f, blob[:2*s3.PartSize+1])
	key := blobKey("", d)
	waitPart(parts, key) // a part is in the bucket
	if _, err := r.Content.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Stat mid-upload = %v, want ErrNotFound", err)
	}
	if got := uploads(t, cfg, "blobs/"); !slices.Equal(got, []string{key}) {
		t.Fatalf("incomplete uploads mid-fill = %v, want [%s]", got, key)
	}
	writeSmall(t, f, blob[2*s3.PartSize+1:])
	if err := r.Content.Commit(ctx, d, f); err != nil {
		t.Fatal(err)
	}
	if !s3.UploaderDone(f) {
		t.Fatal("the uploader goroutine runs on after Commit")
	}
	if got := uploads(t, cfg, "blobs/"); len(got) != 0 {
		t.Fatalf("incomplete uploads after Commit = %v, want none", got)
	}
	if n := r.spooled(t); n != 0 {
		t.Fatalf("%d spool files left after Commit", n)
	}
	if len(parts) != 3 { // and the one received
		t.Fatalf("%d parts sent, want 4", len(parts)+1)
	}

	body, size, err := r.Content.Open(ctx, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, err = io.Copy(h, body)
	body.Close()
	if err != nil || size != int64(len(blob)) || digest.NewDigest(digest.SHA256, h) != d {
		t.Fatalf("Open = %s, size %d, %v; want %s, size %d", digest.NewDigest(digest.SHA256, h), size, err, d, len(blob))
	}
	for _, off := range []int64{1, s3.PartSize - 1, s3.PartSize, 2*s3.PartSize + 7, int64(len(blob)) - 10, int64(len(blob))} {
		body, size, err := r.Content.Open(ctx, d, off)
		if err != nil {
			t.Fatalf("Open at %d: %v", off, err)
		}
		got := make([]byte, min(4096, int64(len(blob))-off))
		_, err = io.ReadFull(body, got)
		body.Close()
		if err != nil || size != int64(len(blob)) || !bytes.Equal(got, blob[off:off+int64(len(got))]) {
			t.Fatalf("Open at %d = size %d, %v, bytes equal: %t", off, size, err, bytes.Equal(got, blob[off:off+int64(len(got))]))
		}
	}
	if u := r.usage(t); u != (store.Usage{Bytes: int64(len(blob)), Count: 1}) {
		t.Fatalf("Usage = %+v, want one blob of %d bytes", u, len(blob))
	}
}

// A fill that fails mid-upload leaves nothing behind: no object, no
// incomplete upload, no spool file, whether it is discarded or its Commit
// fails.
func TestFailedFillLeavesNothing(t *testing.T) {
	cfg := s3test.Start(t)
	blob := pseudoRandom(2*s3.PartSize+1<<20, 2)
	d := digest.FromBytes(blob)
	for _, c := range []struct {
		name string
		end  func(*replica, store.SpoolFile) error
	}{
		{"Discard", func(_ *replica, f store.SpoolFile) error { return f.Discard() }},
		{"CommitCancelled", func(r *replica, f store.SpoolFile) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := r.Content.Commit(ctx, d, f); !errors.Is(err, context.Canceled) {
				t.Errorf("Commit with its context cancelled = %v, want context.Canceled", err)
			}
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, parts := streaming(t, cfg, c.name+"/")
			f, err := r.Spool.Create(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			writeSmall(t, f, blob)
			waitPart(parts, blobKey(c.name+"/", d))
			if got := uploads(t, cfg, c.name+"/"); len(got) != 1 {
				t.Fatalf("incomplete uploads mid-fill = %v, want one", got)
			}
			if err := c.end(r, f); err != nil {
				t.Fatal(err)
			}
			if !s3.UploaderDone(f) {
				t.Fatal("the uploader goroutine runs on")
			}
			if got := uploads(t, cfg, c.name+"/"); len(got) != 0 {
				t.Fatalf("incomplete uploads left = %v, want none", got)
			}
			if _, err := r.Content.Stat(context.Background(), d); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Stat = %v, want ErrNotFound", err)
			}
			if n := r.spooled(t); n != 0 {
				t.Fatalf("%d spool files left", n)
			}
		})
	}
}

// A file that was not created for the digest it is committed as (spooled
// only, or for another digest) is uploaded at Commit, multipart if large;
// the upload begun for another digest is aborted.
func TestCommitOfAFileForAnotherDigest(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	r, parts := streaming(t, cfg, "")
	blob := pseudoRandom(s3.PartSize+1<<20, 3)
	d := digest.FromBytes(blob)
	for _, created := range []digest.Digest{"", digest.FromString("another")} {
		f, err := r.Spool.Create(ctx, created)
		if err != nil {
			t.Fatal(err)
		}
		writeSmall(t, f, blob)
		if created != "" {
			waitPart(parts, blobKey("", created)) // the upload for the other digest has begun
		}
		if err := r.Content.Commit(ctx, d, f); err != nil {
			t.Fatal(err)
		}
		body, _, err := r.Content.Open(ctx, d, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		body.Close()
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("created for %q: Open = %d bytes, %v; want the %d committed", created, len(got), err, len(blob))
		}
		if got := r.walk(t); !slices.Equal(got, []digest.Digest{d}) {
			t.Fatalf("created for %q: Walk = %v, want only [%s]", created, got, d)
		}
		if got := uploads(t, cfg, "blobs/"); len(got) != 0 {
			t.Fatalf("created for %q: incomplete uploads = %v, want none\n%s", created, got, r.log)
		}
		if err := r.Content.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
}

// partGate holds the requests that upload parts until it is opened, and
// counts them.
type partGate struct {
	base    http.RoundTripper
	held    chan struct{} // a token per part request held
	open    chan struct{}
	mu      sync.Mutex
	now     int // part requests in flight
	maxSeen int
}

func (g *partGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPut || !req.URL.Query().Has("partNumber") {
		return g.base.RoundTrip(req)
	}
	g.mu.Lock()
	g.now++
	g.maxSeen = max(g.maxSeen, g.now)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.now--
		g.mu.Unlock()
	}()
	g.held <- struct{}{}
	select {
	case <-g.open:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	return g.base.RoundTrip(req)
}

// Writes never wait for the network: with the bucket taking no part, a
// whole blob is written; the parts in flight stay within their bound, and
// Commit waits for them.
func TestWritesDoNotWaitForUploads(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	gate := &partGate{base: http.DefaultTransport.(*http.Transport).Clone(), held: make(chan struct{}, 64), open: make(chan struct{})}
	cfg.Transport = gate
	r := open(t, cfg, "")
	blob := pseudoRandom(3*s3.PartSize+1<<20, 4)
	d := digest.FromBytes(blob)
	f, err := r.Spool.Create(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	writeSmall(t, f, blob[:2*s3.PartSize])
	<-gate.held
	<-gate.held // two parts held in flight
	writeSmall(t, f, blob[2*s3.PartSize:])
	close(gate.open)
	if err := r.Content.Commit(ctx, d, f); err != nil {
		t.Fatal(err)
	}
	gate.mu.Lock()
	maxSeen := gate.maxSeen
	gate.mu.Unlock()
	if maxSeen > 2 {
		t.Fatalf("%d parts were in flight at once, want 2 at most", maxSeen)
	}
	body, size, err := r.Content.Open(ctx, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, err = io.Copy(h, body)
	body.Close()
	if err != nil || size != int64(len(blob)) || digest.NewDigest(digest.SHA256, h) != d {
		t.Fatalf("Open = %d bytes, %v; want the blob", size, err)
	}
}
