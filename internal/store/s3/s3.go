// Package s3 is the object store backend: verified blobs and records live
// in an S3-compatible bucket, shared by every replica that uses it, while
// fills still spool on local disk, where the clients sharing a fill read
// them at once.
//
// Layout, under the configured prefix: blobs at
// blobs/<algorithm>/<2 hex>/<hex>, records at records/<key>, as in the
// filesystem backend's data directory.
//
// A fill of a known blob uploads itself while it arrives: its spool file
// sends each completed 16 MiB part, read back from local disk, as a part
// of a multipart upload of the blob's final key, and Commit completes the
// upload. S3 makes an object visible only once its upload is completed, so
// that a blob that was not verified is never visible; a fill that fails
// aborts its upload, and uploads a crash left behind are aborted by
// AbortStale, which New runs for those older than a day.
package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
)

// Config says which bucket to use. Its fields mirror the configuration's
// keys storage.s3.{endpoint, region, bucket, prefix, path_style,
// access_key_env, secret_key_env}.
type Config struct {
	// Endpoint is the server's URL, scheme and host only:
	// "http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com".
	// Empty: AWS's endpoint for Region.
	Endpoint string
	// Region is the bucket's region. Empty: the client asks the server.
	Region string
	// Bucket is the bucket's name, required.
	Bucket string
	// Prefix is put before every key, so that several stores can share a
	// bucket: "" or, say, "entrepot/" (a missing final slash is added).
	Prefix string
	// PathStyle puts the bucket in the request's path rather than its host
	// name, as MinIO and most self-hosted servers want. Otherwise the
	// client chooses: the host name for AWS, the path elsewhere.
	PathStyle bool
	// AccessKey and SecretKey sign the requests. Empty: the usual AWS
	// chain, in order: the variables AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the shared files
	// ~/.aws/credentials and ~/.aws/config (profile AWS_PROFILE), and the
	// instance's or task's role (EC2, ECS, EKS's IRSA).
	AccessKey, SecretKey string
	// Transport carries the requests. Nil: minio-go's default.
	Transport http.RoundTripper
}

// Bucket is a bucket holding a store's content and records, beside a local
// spool. Its methods are safe for concurrent use.
type Bucket struct {
	client *minio.Client
	core   minio.Core // the same client, with the multipart calls
	name   string     // of the bucket
	prefix string
	local  store.Spool
	log    *slog.Logger

	// ctx bounds the bucket's background work (a recount of its blobs),
	// which Close cancels and waits for.
	ctx  context.Context
	stop context.CancelFunc
	bg   sync.WaitGroup

	turnsMu sync.Mutex // protects turns
	// turns holds, for each blob that a commit or delete of this process
	// is changing, a channel closed when that one is done: one at a time
	// per blob, so that each is counted once (lockBlob).
	turns map[digest.Digest]chan struct{}

	mu sync.Mutex // protects the count's fields, in usage.go
	counter

	// partDone, if set (by tests), is called after each part is uploaded.
	partDone func(key string, number int)
}

// The three parts of a Bucket, each the Bucket under the interface's
// names.
type (
	spool   struct{ *Bucket }
	content struct{ *Bucket }
	records struct{ *Bucket }
)

var (
	_ store.Spool      = spool{}
	_ store.Content    = content{}
	_ store.Records    = records{}
	_ store.Redirector = content{}
)

// Store returns the bucket's streaming spool over the local one, and its
// content and records.
func (b *Bucket) Store() store.Store {
	return store.Store{Spool: spool{b}, Content: content{b}, Records: records{b}}
}

// staleUploads is how old an incomplete upload of a blob has to be for New
// to abort it: no fill takes that long, so its process died.
const staleUploads = 24 * time.Hour

// New opens the bucket of cfg, with spool (the data directory's) for the
// fills, and checks that the bucket exists and answers. It aborts the
// uploads of blobs a crash left incomplete a day ago or more (AbortStale);
// failing that is only logged. log may be nil.
func New(ctx context.Context, cfg Config, spool store.Spool, log *slog.Logger) (*Bucket, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket named (storage.s3.bucket)")
	}
	host, secure, err := endpoint(cfg)
	if err != nil {
		return nil, err
	}
	creds, err := credentialsOf(cfg)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{
		Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup, Transport: cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %s: %w", host, err)
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %q at %s: %w%s", cfg.Bucket, host, err, credentialsHint(err))
	}
	if !ok {
		return nil, fmt.Errorf("s3: bucket %q not found at %s", cfg.Bucket, host)
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	b := &Bucket{
		client: client, core: minio.Core{Client: client}, name: cfg.Bucket, prefix: prefix,
		local: spool, log: log.With("bucket", cfg.Bucket), turns: map[digest.Digest]chan struct{}{},
	}
	b.ctx, b.stop = context.WithCancel(context.WithoutCancel(ctx))
	if _, err := b.AbortStale(ctx, staleUploads); err != nil {
		b.log.Warn("could not abort stale uploads; a lifecycle rule on the bucket can", "err", err)
	}
	return b, nil
}

// Close stops a count of the blobs under way, and waits for it. The bucket
// must not be used after.
func (b *Bucket) Close() error {
	b.stop()
	b.bg.Wait()
	return nil
}

// endpoint returns the host (and port) of cfg's server, and whether it
// speaks TLS.
func endpoint(cfg Config) (host string, secure bool, err error) {
	if cfg.Endpoint == "" {
		if cfg.Region == "" || cfg.Region == "us-east-1" {
			return "s3.amazonaws.com", true, nil
		}
		return "s3." + cfg.Region + ".amazonaws.com", true, nil
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which might hold a password
		}
		return "", false, fmt.Errorf("s3: storage.s3.endpoint: %w", err)
	}
	switch {
	case u.User != nil:
		return "", false, errors.New("s3: storage.s3.endpoint: credentials do not belong in the URL")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Path != "" && u.Path != "/", u.RawQuery != "":
		return "", false, fmt.Errorf("s3: storage.s3.endpoint %q: want http(s)://host[:port], without a path", cfg.Endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

// credentialsOf returns cfg's keys, or the AWS chain.
func credentialsOf(cfg Config) (*credentials.Credentials, error) {
	switch {
	case cfg.AccessKey != "" && cfg.SecretKey != "":
		return credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), nil
	case cfg.AccessKey != "" || cfg.SecretKey != "":
		return nil, errors.New("s3: an access key goes with a secret key (storage.s3.access_key_env and secret_key_env)")
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	}), nil
}

// credentialsHint adds to an error that refused the credentials where
// they come from.
func credentialsHint(err error) string {
	switch errorCode(err) {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
		return " (check the credentials: storage.s3.access_key_env and secret_key_env, or the AWS chain)"
	}
	return ""
}

func (b *Bucket) blobKey(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("s3: %w", err)
	}
	hex := d.Encoded()
	return b.prefix + "blobs/" + string(d.Algorithm()) + "/" + hex[:2] + "/" + hex, nil
}

// digestOf is the digest of the blob stored under key, if it is one.
func (b *Bucket) digestOf(key string) (digest.Digest, bool) {
	rel, ok := strings.CutPrefix(key, b.prefix+"blobs/")
	parts := strings.Split(rel, "/")
	if !ok || len(parts) != 3 || len(parts[1]) != 2 || !strings.HasPrefix(parts[2], parts[1]) {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
	return d, d.Validate() == nil
}

// list calls fn for every object under prefix, until fn fails, whose
// error it returns as it is.
func (b *Bucket) list(ctx context.Context, prefix string, fn func(minio.ObjectInfo) error) error {
	noOwner := false
	opts := minio.ListObjectsOptions{Prefix: prefix, Recursive: true, FetchOwner: &noOwner}
	for obj := range b.client.ListObjectsIter(ctx, b.name, opts) {
		if obj.Err != nil {
			return fmt.Errorf("s3: listing %s: %w", prefix, obj.Err)
		}
		if err := fn(obj); err != nil {
			return err
		}
	}
	// The listing ends early, without an error, when ctx does.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: listing %s: %w", prefix, err)
	}
	return nil
}

// lockBlob waits until no other commit or delete of blob d by this process
// runs, and returns the function that ends this one's turn.
func (b *Bucket) lockBlob(ctx context.Context, d digest.Digest) (unlock func(), err error) {
	for {
		b.turnsMu.Lock()
		busy, ok := b.turns[d]
		if !ok {
			mine := make(chan struct{})
			b.turns[d] = mine
			b.turnsMu.Unlock()
			return func() {
				b.turnsMu.Lock()
				delete(b.turns, d)
				b.turnsMu.Unlock()
				close(mine)
			}, nil
		}
		b.turnsMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// errorCode is the S3 error code of err ("NoSuchKey"), if it is an S3
// error.
func errorCode(err error) string {
	var e minio.ErrorResponse
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isNotFound tells whether err is S3's answer for a missing object. A
// missing bucket is not one: it is a broken configuration, not a blob to
// fetch.
func isNotFound(err error) bool {
	var e minio.ErrorResponse
	if !errors.As(err, &e) {
		return false
	}
	return e.Code == "NoSuchKey" || e.StatusCode == http.StatusNotFound && e.Code != "NoSuchBucket"
}

// notFound translates S3's answer for a missing object to
// store.ErrNotFound.
func notFound(err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return err
}
