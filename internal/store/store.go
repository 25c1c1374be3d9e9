// Package store defines where the cache keeps content: blobs addressed by
// digest, and small named records (tag links, manifest media types). The
// filesystem (package fs) is the first backend; every backend passes the
// shared conformance test in package storetest.
package store

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"
)

// ErrNotFound is what every backend returns, wrapped or not, for a blob or
// record it does not hold.
var ErrNotFound = errors.New("not found")

// Store holds verified content. Implementations are safe for concurrent use.
type Store interface {
	// Stat returns the size of the blob d.
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	// Open returns the blob d for reading, and its size. The filesystem
	// backend returns an *os.File, so that serving it can use sendfile.
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error)
	// Create starts writing a new blob. Nothing is visible to Stat or Open
	// until Commit.
	Create(ctx context.Context) (Writer, error)

	// Get returns the record under key, a slash-separated path of
	// validated parts (see package route).
	Get(ctx context.Context, key string) ([]byte, error)
	// Put replaces the record under key atomically.
	Put(ctx context.Context, key string, value []byte) error
}

// Writer receives a blob's bytes while a fill is under way.
type Writer interface {
	io.Writer
	// Reader returns a new reader of the bytes written, so that clients
	// are served from a fill while it runs. It reads concurrently with
	// Write, on bytes Write has returned, and stays readable after Commit.
	// The filesystem backend returns an *os.File, for sendfile.
	Reader() (io.ReadSeekCloser, error)
	// Commit makes the bytes written visible as blob d, atomically. The
	// caller has verified that they hash to d. After Commit (or Cancel)
	// the Writer must not be used.
	Commit(ctx context.Context, d digest.Digest) error
	// Cancel discards the bytes written.
	Cancel() error
}
