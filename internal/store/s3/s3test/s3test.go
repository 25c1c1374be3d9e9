// Package s3test runs a real S3-compatible server for tests: versitygw
// (Apache-2.0), on its posix backend in a temporary directory, on
// a loopback port, killed when the test ends. It speaks what the store
// uses: multipart uploads, ranged GETs, listings, presigned GETs.
//
// The binary is $ENTREPOT_S3_SERVER, or versitygw on PATH; without it the
// test is skipped (failed under ENTREPOT_REQUIRE_SERVERS). Install it
// with:
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
package s3test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/store/s3"
	"github.com/entrepot/entrepot/internal/testenv"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Install is the command that installs the server Start runs.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// The server's root user, and its region.
const (
	accessKey = "entrepot-test"
	secretKey = "entrepot-test-secret-key"
	region    = "us-east-1"
	bucket    = "entrepot-test"
)

// Start starts a server with an empty bucket, and returns the Config of
// that bucket: path style, static keys, no prefix.
func Start(t testing.TB) s3.Config {
	t.Helper()
	bin := testenv.Binary(t, "versitygw", "ENTREPOT_S3_SERVER", Install)
	root := t.TempDir() // before Start, so that it is removed after the kill
	addr := testenv.Addr(testenv.FreePort(t))
	cfg := s3.Config{
		Endpoint: "http://" + addr, Region: region, Bucket: bucket, PathStyle: true,
		AccessKey: accessKey, SecretKey: secretKey,
	}
	c := Client(t, cfg)
	// The keys go in the environment, not on the command line.
	env := []string{"ROOT_ACCESS_KEY_ID=" + accessKey, "ROOT_SECRET_ACCESS_KEY=" + secretKey}
	testenv.Start(t, bin, []string{"--port", addr, "--region", region, "--quiet", "posix", root}, env, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.ListBuckets(ctx)
		return err
	})
	if err := c.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}
	return cfg
}

// Client returns a client of cfg's server, for a test to look at the
// bucket behind the store's back (its incomplete uploads, say). It tries
// each request once.
func Client(t testing.TB, cfg s3.Config) minio.Core {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(cfg.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Region: cfg.Region,
		BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return minio.Core{Client: c}
}
