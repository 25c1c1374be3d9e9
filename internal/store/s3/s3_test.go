package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/store/s3"
	"github.com/entrepot/entrepot/internal/store/s3/s3test"
	"github.com/entrepot/entrepot/internal/store/storetest"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// replica is a store on the bucket, as one replica of a cluster opens it:
// its bucket, the data directory of its spool, and its log.
type replica struct {
	*s3.Bucket
	store.Store
	dataDir string
	log     *logBuffer
}

func open(t *testing.T, cfg s3.Config, prefix string) *replica {
	t.Helper()
	r := &replica{dataDir: t.TempDir(), log: &logBuffer{}}
	dir, err := fs.New(r.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	cfg.Prefix = prefix
	if r.Bucket, err = s3.New(context.Background(), cfg, dir.Store().Spool, slog.New(slog.NewTextHandler(r.log, nil))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Bucket.Close() })
	r.Store = r.Bucket.Store()
	return r
}

// commit stores b as a blob, through a spool file created for it.
func (r *replica) commit(t *testing.T, b []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	d := digest.FromBytes(b)
	f, err := r.Spool.Create(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := r.Content.Commit(ctx, d, f); err != nil {
		t.Fatal(err)
	}
	return d
}

// spooled counts the files left in the data directory's spool.
func (r *replica) spooled(t *testing.T) int {
	t.Helper()
	left, err := os.ReadDir(filepath.Join(r.dataDir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return len(left)
}

func (r *replica) usage(t *testing.T) store.Usage {
	t.Helper()
	u, err := r.Content.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (r *replica) walk(t *testing.T) []digest.Digest {
	t.Helper()
	var got []digest.Digest
	if err := r.Content.Walk(context.Background(), func(d digest.Digest, _ int64) error {
		got = append(got, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// uploads returns the keys of the incomplete uploads under prefix.
func uploads(t *testing.T, cfg s3.Config, prefix string) []string {
	t.Helper()
	res, err := s3test.Client(t, cfg).ListMultipartUploads(context.Background(), cfg.Bucket, prefix, "", "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range res.Uploads {
		keys = append(keys, u.Key)
	}
	return keys
}

func TestConformance(t *testing.T) {
	cfg := s3test.Start(t)
	t.Run("Spool", func(t *testing.T) { storetest.Spool(t, open(t, cfg, "spool-test/").Spool) })
	t.Run("Content", func(t *testing.T) {
		r := open(t, cfg, "content-test/")
		storetest.Content(t, r.Content, r.Spool)
	})
	t.Run("Records", func(t *testing.T) { storetest.Records(t, open(t, cfg, "records-test/").Records) })
}

// Two stores on one bucket under different prefixes do not see each
// other's blobs or records, nor does one at the bucket's root.
func TestPrefixesKeepStoresApart(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	a, b, root := open(t, cfg, "a/"), open(t, cfg, "b"), open(t, cfg, "")
	blob := []byte("in a only")
	d := a.commit(t, blob)
	if err := a.Records.Put(ctx, "repos/x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for name, other := range map[string]*replica{"b": b, "root": root} {
		if _, err := other.Content.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Stat of a's blob = %v, want ErrNotFound", name, err)
		}
		if got := other.walk(t); len(got) != 0 {
			t.Errorf("%s: Walk = %v, want nothing", name, got)
		}
		if u := other.usage(t); u != (store.Usage{}) {
			t.Errorf("%s: Usage = %+v, want none", name, u)
		}
		if _, err := other.Records.Get(ctx, "repos/x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Get of a's record = %v, want ErrNotFound", name, err)
		}
	}
	if got := a.walk(t); !slices.Equal(got, []digest.Digest{d}) {
		t.Fatalf("a: Walk = %v, want [%s]", got, d)
	}
	b.commit(t, blob)
	if err := a.Content.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if size, err := b.Content.Stat(ctx, d); err != nil || size != int64(len(blob)) {
		t.Fatalf("b: Stat after a's Delete = %d, %v; want b's copy", size, err)
	}
	// "b" (no slash) is the prefix "b/".
	if _, err := s3test.Client(t, cfg).StatObject(ctx, cfg.Bucket, "b/blobs/sha256/"+d.Encoded()[:2]+"/"+d.Encoded(), minio.StatObjectOptions{}); err != nil {
		t.Fatalf("b's blob is not under b/blobs/: %v", err)
	}
}

// An empty blob opens empty; an offset past a blob's end is an error, not
// a missing blob.
func TestOpenAtAndPastTheEnd(t *testing.T) {
	ctx := context.Background()
	r := open(t, s3test.Start(t), "")
	empty := r.commit(t, nil)
	body, size, err := r.Content.Open(ctx, empty, 0)
	if err != nil {
		t.Fatal(err)
	}
	if all, err := io.ReadAll(body); err != nil || len(all) != 0 || size != 0 {
		t.Fatalf("Open of the empty blob = %d bytes, size %d, %v", len(all), size, err)
	}
	body.Close()
	d := r.commit(t, []byte("four"))
	for _, c := range []struct {
		d   digest.Digest
		off int64
	}{{empty, 1}, {d, 5}, {d, 100}} {
		if _, _, err := r.Content.Open(ctx, c.d, c.off); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Open of a %d-byte blob at %d = %v, want an error other than ErrNotFound", 4, c.off, err)
		}
	}
}

// A presigned URL serves the blob to a plain HTTP client; it is signed
// without asking the server, so one of a missing blob answers 404.
func TestPresignedURL(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	r := open(t, cfg, "p/")
	blob := bytes.Repeat([]byte("presigned "), 1000)
	d := r.commit(t, blob)
	rd, ok := r.Content.(store.Redirector)
	if !ok {
		t.Fatal("the bucket's Content is no store.Redirector")
	}
	get := func(d digest.Digest) (int, []byte) {
		t.Helper()
		u, err := rd.URL(ctx, d, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(u, cfg.SecretKey) {
			t.Fatal("the URL holds the secret key")
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if status, body := get(d); status != http.StatusOK || !bytes.Equal(body, blob) {
		t.Fatalf("GET of the presigned URL = %d, %d bytes; want 200 and the %d of the blob", status, len(body), len(blob))
	}
	if status, _ := get(digest.FromString("missing")); status != http.StatusNotFound {
		t.Fatalf("GET of a missing blob's presigned URL = %d, want 404", status)
	}
}

// Objects under blobs/ that are no blob are skipped by Walk (and logged)
// and not counted.
func TestWalkSkipsStrays(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	r := open(t, cfg, "")
	d := r.commit(t, []byte("a blob"))
	hex := digest.FromString("x").Encoded()
	c := s3test.Client(t, cfg)
	for _, key := range []string{"blobs/stray", "blobs/sha256/zz/" + hex, "blobs/sha256/ab/abnothex", "blobs/sha256/" + hex} {
		if _, err := c.PutObject(ctx, cfg.Bucket, key, strings.NewReader("x"), 1, "", "", minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.walk(t); !slices.Equal(got, []digest.Digest{d}) {
		t.Fatalf("Walk = %v, want [%s]", got, d)
	}
	if n := strings.Count(r.log.String(), "no blob"); n != 4 {
		t.Fatalf("%d strays logged, want 4:\n%s", n, r.log)
	}
	if u := r.usage(t); u != (store.Usage{Bytes: 6, Count: 1}) {
		t.Fatalf("Usage = %+v, want the one blob of 6 bytes", u)
	}
}
