package s3_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/store/s3"
	"github.com/entrepot/entrepot/internal/store/s3/s3test"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// New refuses a configuration that cannot work, saying why, and never
// with a secret in its message.
func TestNewRefuses(t *testing.T) {
	good := s3test.Start(t)
	dir, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	const secret = "not-the-secret-key"
	for _, c := range []struct {
		name string
		cfg  func(*s3.Config)
		want string
	}{
		{"NoBucketNamed", func(c *s3.Config) { c.Bucket = "" }, "storage.s3.bucket"},
		{"MissingBucket", func(c *s3.Config) { c.Bucket = "no-such-bucket" }, `bucket "no-such-bucket" not found`},
		{"WrongSecret", func(c *s3.Config) { c.SecretKey = secret }, "check the credentials"},
		{"KeyWithoutSecret", func(c *s3.Config) { c.SecretKey = "" }, "goes with a secret key"},
		{"NotHTTP", func(c *s3.Config) { c.Endpoint = "ftp://127.0.0.1:21" }, "want http(s)://host[:port]"},
		{"Path", func(c *s3.Config) { c.Endpoint += "/bucket" }, "without a path"},
		{"PasswordInURL", func(c *s3.Config) { c.Endpoint = "http://user:" + secret + "@127.0.0.1:1" }, "credentials do not belong in the URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.cfg(&cfg)
			_, err := s3.New(context.Background(), cfg, dir.Store().Spool, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v, want an error saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), good.SecretKey) {
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}
}

// Without keys in the configuration, the AWS variables give them.
func TestCredentialsFromTheEnvironment(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	key, secret := cfg.AccessKey, cfg.SecretKey
	cfg.AccessKey, cfg.SecretKey = "", ""
	none := filepath.Join(t.TempDir(), "none") // no shared files: only the variables count
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-"+secret)
	dir, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if _, err := s3.New(ctx, cfg, dir.Store().Spool, nil); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("New with a wrong secret in AWS_SECRET_ACCESS_KEY = %v, want an error without it", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	r := open(t, cfg, "")
	d := r.commit(t, []byte("signed with the environment's keys"))
	if got := r.walk(t); !slices.Equal(got, []digest.Digest{d}) {
		t.Fatalf("Walk = %v, want [%s]", got, d)
	}
}

// AbortStale aborts the incomplete uploads of blobs older than asked, and
// no others; New leaves those of less than a day alone.
func TestAbortStale(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	c := s3test.Client(t, cfg)
	for _, key := range []string{"p/blobs/sha256/ab/abcd", "other/blobs/sha256/ab/abcd"} {
		if _, err := c.NewMultipartUpload(ctx, cfg.Bucket, key, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r := open(t, cfg, "p/")
	if got := uploads(t, cfg, ""); len(got) != 2 {
		t.Fatalf("uploads after New = %v, want both, begun less than a day ago", got)
	}
	if n, err := r.AbortStale(ctx, time.Hour); n != 0 || err != nil {
		t.Fatalf("AbortStale(1h) = %d, %v; want 0 of uploads begun just now", n, err)
	}
	if n, err := r.AbortStale(ctx, 0); n != 1 || err != nil {
		t.Fatalf("AbortStale(0) = %d, %v; want 1", n, err)
	}
	if got := uploads(t, cfg, ""); !slices.Equal(got, []string{"other/blobs/sha256/ab/abcd"}) {
		t.Fatalf("uploads after AbortStale = %v, want only the other prefix's", got)
	}
	if !strings.Contains(r.log.String(), "aborted a stale upload") || !strings.Contains(r.log.String(), "p/blobs/sha256/ab/abcd") {
		t.Fatalf("the abort is not logged:\n%s", r.log)
	}
}

// Usage counts the bucket once, then follows this replica's commits and
// deletes; another replica's are seen once the count is a minute old, when
// Usage answers at once with the old count and recounts behind it.
func TestUsageFollowsReplicas(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	one, two := open(t, cfg, ""), open(t, cfg, "")
	one.commit(t, []byte("one's"))
	if u := one.usage(t); u != (store.Usage{Bytes: 5, Count: 1}) {
		t.Fatalf("first Usage = %+v, want 1 blob of 5 bytes", u)
	}
	d := two.commit(t, []byte("two's blob"))
	if u := one.usage(t); u != (store.Usage{Bytes: 5, Count: 1}) {
		t.Fatalf("Usage within a minute of the count = %+v, want it as counted", u)
	}
	s3.AgeCount(one.Bucket)
	if u := one.usage(t); u != (store.Usage{Bytes: 5, Count: 1}) {
		t.Fatalf("Usage of an old count = %+v, want it as it is while recounting", u)
	}
	s3.WaitCount(one.Bucket)
	if u := one.usage(t); u != (store.Usage{Bytes: 15, Count: 2}) {
		t.Fatalf("Usage after the recount = %+v, want both replicas' blobs", u)
	}
	if err := one.Content.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if u := one.usage(t); u != (store.Usage{Bytes: 5, Count: 1}) {
		t.Fatalf("Usage after a Delete = %+v, want 1 blob of 5 bytes", u)
	}
}

// Commits and deletes made while the blobs are counted are counted once,
// whatever their order with the listing.
func TestUsageWhileCounting(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.Start(t)
	first := open(t, cfg, "")
	var present []digest.Digest
	for i := range 200 {
		present = append(present, first.commit(t, fmt.Appendf(nil, "blob %d", i)))
	}
	r := open(t, cfg, "")
	s3.BeginCount(r.Bucket) // as the first Usage does
	for i := range 30 {
		r.commit(t, fmt.Appendf(nil, "new %d", i))
		if err := r.Content.Delete(ctx, present[i*6]); err != nil {
			t.Fatal(err)
		}
	}
	got := r.usage(t)
	var want store.Usage
	r.Content.Walk(ctx, func(_ digest.Digest, size int64) error {
		want.Bytes += size
		want.Count++
		return nil
	})
	if got != want || want.Count != 200 {
		t.Fatalf("Usage = %+v, what the bucket holds: %+v (want 200 blobs)", got, want)
	}
}
