// Package store defines where the cache keeps what it has fetched, split by
// what backends can do:
//
//   - a Spool holds a fill's bytes while they arrive, readable at once by
//     the clients sharing the fill: always local disk;
//   - Content holds verified blobs (manifests included) by digest: the
//     filesystem here, an object store later;
//   - Records hold small named values: tag links, manifest media types,
//     cached tag lists and referrers, and later last-pulled times, pins
//     and frozen tags.
//
// The filesystem (package fs) implements all three. Every backend passes
// the conformance tests of package storetest for the interfaces it
// implements. A backend's extra powers (serving a blob with sendfile, a
// presigned URL) are not promised here: the filesystem's readers are
// *os.File values, which net/http sends with sendfile.
package store

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// ErrNotFound is what every backend returns, wrapped or not, for a blob or
// record it does not hold.
var ErrNotFound = errors.New("not found")

// Store is the three parts a cache keeps its data in.
type Store struct {
	Spool   Spool
	Content Content
	Records Records
}

// Spool holds fills in progress. Implementations are safe for concurrent
// use.
type Spool interface {
	// Create starts a new spool file for blob d. A backend that can store
	// a blob while it arrives (an object store's multipart upload) may
	// begin to, out of sight until the Commit of d; d "" asks for a file
	// that is only spooled (a copy of a fill another replica stores).
	Create(ctx context.Context, d digest.Digest) (SpoolFile, error)
}

// SpoolFile receives a blob's bytes while a fill is under way. Write is
// called from one goroutine; Reader from any.
type SpoolFile interface {
	io.Writer
	// Reader returns a new reader of the bytes written, from offset off.
	// It reads concurrently with Write, only bytes Write has returned,
	// and reads on after the file is committed or discarded.
	Reader(off int64) (io.ReadCloser, error)
	// Discard removes the file. Readers opened before read on.
	Discard() error
}

// Content holds verified blobs, addressed by digest. Implementations are
// safe for concurrent use.
type Content interface {
	// Stat returns the size of blob d.
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	// Open returns blob d for reading from offset off, and the blob's
	// whole size. A reader opened before a Delete reads on.
	Open(ctx context.Context, d digest.Digest, off int64) (io.ReadCloser, int64, error)
	// Commit makes the bytes of f visible as blob d, atomically: readers
	// see all of them or none. The caller has verified that they hash to
	// d. Commit consumes f, whatever its outcome; readers of f read on.
	// Committing a blob already held is not an error.
	Commit(ctx context.Context, d digest.Digest, f SpoolFile) error
	// Delete removes blob d. Deleting a blob not held is not an error.
	Delete(ctx context.Context, d digest.Digest) error
	// Walk calls fn for every blob held, in no particular order, until fn
	// returns an error, which Walk returns.
	Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error
	// Usage returns the total size and number of the blobs held. The first
	// call may take a while (the filesystem counts its blobs then).
	Usage(ctx context.Context) (Usage, error)
}

// Usage is how much a Content holds.
type Usage struct {
	Bytes, Count int64
}

// Records holds small named values. Keys are slash-separated paths of
// validated parts (names, tags and digests that package oci accepts).
// Implementations are safe for concurrent use.
type Records interface {
	// Get returns the record under key.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put replaces the record under key atomically.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes the record under key. Deleting a record not held is
	// not an error.
	Delete(ctx context.Context, key string) error
	// Walk calls fn for the key of every record under prefix (a key, or
	// "" for all), in no particular order, until fn returns an error,
	// which Walk returns.
	Walk(ctx context.Context, prefix string, fn func(key string) error) error
}

// Redirector is a Content that can hand out a URL of a blob, valid for
// expiry, that clients fetch it from directly (an object store's presigned
// GET), so that its bytes bypass the cache. Found by type assertion.
type Redirector interface {
	URL(ctx context.Context, d digest.Digest, expiry time.Duration) (string, error)
}
