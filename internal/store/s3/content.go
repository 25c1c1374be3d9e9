package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// blobType is the Content-Type of the blobs' objects: what a client
// following a presigned URL gets.
const blobType = "application/octet-stream"

// Stat implements store.Content.
func (c content) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	key, err := c.blobKey(d)
	if err != nil {
		return 0, err
	}
	info, err := c.client.StatObject(ctx, c.name, key, minio.StatObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("s3: stat %s: %w", d, notFound(err))
	}
	return info.Size, nil
}

// Open implements store.Content: a GET, ranged from off, whose body the
// reader streams. An offset at the blob's end gives an empty reader; one
// past it, an error.
func (c content) Open(ctx context.Context, d digest.Digest, off int64) (io.ReadCloser, int64, error) {
	key, err := c.blobKey(d)
	if err != nil {
		return nil, 0, err
	}
	if off < 0 {
		return nil, 0, fmt.Errorf("s3: open %s at %d: negative offset", d, off)
	}
	var opts minio.GetObjectOptions
	if off > 0 {
		opts.SetRange(off, 0) // bytes=off-
	}
	body, info, h, err := c.core.GetObject(ctx, c.name, key, opts)
	switch {
	case err != nil && off > 0 && errorStatus(err) == http.StatusRequestedRangeNotSatisfiable:
		return c.openAtEnd(ctx, d, off)
	case err != nil:
		return nil, 0, fmt.Errorf("s3: open %s: %w", d, notFound(err))
	case off == 0:
		return body, info.Size, nil
	}
	size, ok := totalSize(h.Get("Content-Range"))
	if !ok {
		body.Close()
		return nil, 0, fmt.Errorf("s3: open %s at %d: the server ignored the range (Content-Range %q)", d, off, h.Get("Content-Range"))
	}
	return body, size, nil
}

// openAtEnd answers an Open at off that S3 refused as past the end: at the
// blob's very end it is an empty reader.
func (c content) openAtEnd(ctx context.Context, d digest.Digest, off int64) (io.ReadCloser, int64, error) {
	size, err := c.Stat(ctx, d)
	switch {
	case err != nil:
		return nil, 0, err
	case off != size:
		return nil, 0, fmt.Errorf("s3: open %s at %d: past its end, %d", d, off, size)
	}
	return io.NopCloser(bytes.NewReader(nil)), size, nil
}

// totalSize is the whole size in a Content-Range header, "bytes a-b/size".
func totalSize(contentRange string) (int64, bool) {
	_, total, ok := strings.Cut(contentRange, "/")
	if !ok || !strings.HasPrefix(contentRange, "bytes ") {
		return 0, false
	}
	size, err := strconv.ParseInt(total, 10, 64)
	return size, err == nil && size >= 0
}

// errorStatus is the HTTP status of an S3 error, or 0.
func errorStatus(err error) int {
	var e minio.ErrorResponse
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// Commit implements store.Content. A file of this bucket's spool, created
// for d, has been uploading its full parts while it was written: Commit
// uploads the last one and completes the upload, which makes the object
// visible whole, at once. A small blob is one PUT. Any other file (of
// another spool, spooled only, or for another digest) is uploaded now,
// read back from its start.
func (c content) Commit(ctx context.Context, d digest.Digest, sf store.SpoolFile) error {
	f, ok := sf.(*spoolFile)
	if !ok || f.b != c.Bucket || f.d == "" || f.d != d {
		return c.commitCopy(ctx, d, sf)
	}
	// The local file goes whatever happens, and the upload too unless it
	// was completed.
	defer f.Discard()
	up, size, err := f.finish(ctx)
	if err == nil {
		err = c.place(ctx, d, size, func(ctx context.Context) error {
			if up == nil {
				return c.putObject(ctx, f.key, f, size)
			}
			return up.complete(ctx)
		})
	}
	if err != nil {
		return fmt.Errorf("s3: commit %s: %w", d, err)
	}
	return nil
}

// commitCopy uploads the bytes of sf as blob d, and discards sf.
func (c content) commitCopy(ctx context.Context, d digest.Digest, sf store.SpoolFile) error {
	defer sf.Discard()
	if f, ok := sf.(*spoolFile); ok {
		f.stop() // an upload under another key, if any
	}
	key, err := c.blobKey(d)
	if err != nil {
		return err
	}
	size, err := sizeOf(sf)
	if err == nil {
		err = c.place(ctx, d, size, func(ctx context.Context) error { return c.upload(ctx, key, sf, size) })
	}
	if err != nil {
		return fmt.Errorf("s3: commit %s: %w", d, err)
	}
	return nil
}

// sizeOf returns the number of bytes written to f.
func sizeOf(f store.SpoolFile) (int64, error) {
	if f, ok := f.(*spoolFile); ok {
		return f.size(), nil
	}
	r, err := f.Reader(0)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if s, ok := r.(io.Seeker); ok { // a file: no need to read it
		return s.Seek(0, io.SeekEnd)
	}
	return io.Copy(io.Discard, r)
}

// place makes blob d, of size bytes, visible with put, unless the bucket
// holds it already, and counts it. Commits and deletes of one blob by this
// process take turns, so that each is counted once; another replica's are
// seen at the next recount.
func (c content) place(ctx context.Context, d digest.Digest, size int64, put func(context.Context) error) error {
	unlock, err := c.lockBlob(ctx, d)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := c.Stat(ctx, d); err == nil {
		return nil // the same bytes, as the key is their digest
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	key, _ := c.blobKey(d)
	c.beginChange(key, d)
	if err := put(ctx); err != nil {
		c.endChange(d, store.Usage{})
		return err
	}
	c.endChange(d, store.Usage{Bytes: size, Count: 1})
	return nil
}

// Delete implements store.Content.
func (c content) Delete(ctx context.Context, d digest.Digest) error {
	key, err := c.blobKey(d)
	if err != nil {
		return err
	}
	unlock, err := c.lockBlob(ctx, d)
	if err != nil {
		return err
	}
	defer unlock()
	info, err := c.client.StatObject(ctx, c.name, key, minio.StatObjectOptions{})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("s3: delete %s: %w", d, err)
	}
	c.beginChange(key, d)
	if err := c.client.RemoveObject(ctx, c.name, key, minio.RemoveObjectOptions{}); err != nil {
		c.endChange(d, store.Usage{})
		return fmt.Errorf("s3: delete %s: %w", d, err)
	}
	c.endChange(d, store.Usage{Bytes: -info.Size, Count: -1})
	return nil
}

// Walk implements store.Content. Objects under blobs/ that are no blob are
// skipped, and logged.
func (c content) Walk(ctx context.Context, fn func(digest.Digest, int64) error) error {
	return c.list(ctx, c.prefix+"blobs/", func(obj minio.ObjectInfo) error {
		d, ok := c.digestOf(obj.Key)
		if !ok {
			c.log.Warn("skipping an object that is no blob", "key", obj.Key)
			return nil
		}
		return fn(d, obj.Size)
	})
}

// URL implements store.Redirector: a presigned GET of blob d, valid for
// expiry (a second to a week). It is signed without asking the server, so
// that a URL of a blob the bucket does not hold answers 404.
func (b *Bucket) URL(ctx context.Context, d digest.Digest, expiry time.Duration) (string, error) {
	key, err := b.blobKey(d)
	if err != nil {
		return "", err
	}
	u, err := b.client.PresignedGetObject(ctx, b.name, key, expiry, nil)
	if err != nil {
		return "", fmt.Errorf("s3: presign %s: %w", d, err)
	}
	return u.String(), nil
}
