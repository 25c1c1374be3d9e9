package s3

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

const (
	// partSize is the size of every part of an upload but the last. S3
	// wants 5 MiB at least, and 10,000 parts at most: 16 MiB parts carry
	// blobs up to 156 GiB, and a part's retry stays cheap.
	partSize = 16 << 20
	// maxParts is S3's bound on the parts of an upload.
	maxParts = 10000
	// partsInFlight bounds the parts of one upload sent at once.
	partsInFlight = 2
	// abortTimeout bounds the beginning and the abort of an upload, which
	// run on after the context of their fill may have ended.
	abortTimeout = 30 * time.Second
)

// Create implements store.Spool: a file of the local spool that, for
// a blob d, uploads its parts behind the writes. The upload is its own
// (not bound to ctx, the caller's): it ends with Commit or Discard.
func (s spool) Create(ctx context.Context, d digest.Digest) (store.SpoolFile, error) {
	var key string
	if d != "" {
		var err error
		if key, err = s.blobKey(d); err != nil {
			return nil, err
		}
	}
	local, err := s.local.Create(ctx, "") // the bucket stores it, not the local store
	if err != nil {
		return nil, err
	}
	f := &spoolFile{SpoolFile: local, b: s.Bucket, d: d, key: key,
		more: make(chan struct{}, 1), done: make(chan struct{})}
	f.up = uploader{b: s.Bucket, key: key, src: local}
	f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return f, nil
}

// spoolFile is a fill in progress: a local spool file, which its readers
// read, and, once it holds a whole part, the upload of its blob, which an
// uploader goroutine sends part by part, read back from the local file,
// lagging behind the writes as the network makes it.
type spoolFile struct {
	store.SpoolFile // the local file
	b               *Bucket
	d               digest.Digest // "": the file is only spooled
	key             string        // of blob d

	ctx    context.Context // the upload's: cancelled by Discard and at the end of Commit
	cancel context.CancelFunc
	more   chan struct{} // holds a token when there are more bytes, or no more writes
	done   chan struct{} // closed when the uploader has exited
	up     uploader      // the uploader's until done is closed
	err    error         // the uploader's outcome, set before done is closed

	mu      sync.Mutex // protects the fields below
	written int64
	final   bool // no more writes: written is the size
	started bool // the uploader runs (or ran)
}

// Write implements io.Writer: the bytes go to the local file, and a part
// once full to the uploader, which Write never waits for.
func (f *spoolFile) Write(p []byte) (int, error) {
	n, err := f.SpoolFile.Write(p)
	f.mu.Lock()
	f.written += int64(n)
	start := f.key != "" && !f.started && !f.final && f.written >= partSize
	f.started = f.started || start
	f.mu.Unlock()
	if start {
		go f.upload()
	}
	f.poke()
	return n, err
}

// poke tells the uploader that there is more for it, without waiting.
func (f *spoolFile) poke() {
	select {
	case f.more <- struct{}{}:
	default: // it has a token to take already
	}
}

// progress returns the bytes written, and whether there will be more.
func (f *spoolFile) progress() (written int64, final bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written, f.final
}

func (f *spoolFile) size() int64 {
	n, _ := f.progress()
	return n
}

// upload is the uploader goroutine.
func (f *spoolFile) upload() {
	defer close(f.done)
	f.err = f.up.run(f.ctx, f.more, f.progress)
}

// finish ends the writes, and waits until the uploader has sent the last
// part. It returns the upload, or nil if the blob was too small to begin
// one, and the blob's size.
func (f *spoolFile) finish(ctx context.Context) (*uploader, int64, error) {
	f.mu.Lock()
	f.final = true
	size, started := f.written, f.started
	f.mu.Unlock()
	if !started {
		return nil, size, nil
	}
	f.poke()
	select {
	case <-f.done:
	case <-ctx.Done():
		f.cancel() // the parts in flight stop
		<-f.done
		return nil, size, ctx.Err()
	}
	if f.err != nil {
		return nil, size, f.err
	}
	return &f.up, size, nil
}

// stop ends the upload, if there is one: the uploader exits, and the
// upload is aborted unless it was completed.
func (f *spoolFile) stop() {
	f.cancel()
	f.mu.Lock()
	f.final = true // no uploader starts after this
	started := f.started
	f.mu.Unlock()
	if started {
		<-f.done
		f.up.abort(f.ctx)
	}
}

// Discard implements store.SpoolFile: it aborts the upload, and discards
// the local file.
func (f *spoolFile) Discard() error {
	f.stop()
	return f.SpoolFile.Discard()
}

// uploader sends the bytes of a spool file to the object key, as the parts
// of a multipart upload read back from the file.
type uploader struct {
	b     *Bucket
	key   string
	src   store.SpoolFile
	id    string               // the upload's, once begun; "" again once completed or aborted
	parts []minio.CompletePart // once run has returned nil
}

// run uploads the bytes that progress reports written as parts, each once
// full, until progress reports that there are no more writes; more has a
// token whenever there may be more bytes. At most partsInFlight parts are
// sent at once; the first error ends the upload's run.
func (u *uploader) run(ctx context.Context, more <-chan struct{}, progress func() (int64, bool)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(partsInFlight)
	var mu sync.Mutex // protects etags
	etags := map[int]string{}
	var next int64 // the offset of the next part
	number := 0    // of the last part started
	var err error
loop:
	for {
		written, final := progress()
		for written-next >= partSize || final && next < written {
			if number++; number > maxParts {
				err = fmt.Errorf("s3: %s: larger than %d parts of %d bytes", u.key, maxParts, partSize)
				break loop
			}
			if err = u.begin(gctx); err != nil {
				break loop
			}
			n, off, size := number, next, min(partSize, written-next)
			next += size
			g.Go(func() error { // waits while partsInFlight are
				etag, err := u.putPart(gctx, n, off, size)
				mu.Lock()
				etags[n] = etag
				mu.Unlock()
				return err
			})
		}
		if final {
			break
		}
		select {
		case <-more:
		case <-gctx.Done():
			break loop
		}
	}
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err == nil {
		err = ctx.Err() // stopped before the end
	}
	if err != nil {
		return err
	}
	for n := 1; n <= number; n++ {
		u.parts = append(u.parts, minio.CompletePart{PartNumber: n, ETag: etags[n]})
	}
	return nil
}

// begin starts the multipart upload, if not yet. Once asked for, the
// upload is waited for even if ctx ends: an upload begun on the server
// whose id the answer did not bring back could not be aborted.
func (u *uploader) begin(ctx context.Context) error {
	if u.id != "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	id, err := u.b.core.NewMultipartUpload(ctx, u.b.name, u.key, minio.PutObjectOptions{ContentType: blobType})
	if err != nil {
		return fmt.Errorf("s3: beginning the upload of %s: %w", u.key, err)
	}
	u.id = id
	return nil
}

// putPart uploads part number, size bytes of the file from off.
func (u *uploader) putPart(ctx context.Context, number int, off, size int64) (string, error) {
	body, err := section(u.src, off, size)
	if err != nil {
		return "", fmt.Errorf("s3: part %d of %s: %w", number, u.key, err)
	}
	defer body.Close()
	part, err := u.b.core.PutObjectPart(ctx, u.b.name, u.key, u.id, number, body, size, minio.PutObjectPartOptions{})
	if err != nil {
		return "", fmt.Errorf("s3: uploading part %d of %s: %w", number, u.key, err)
	}
	if u.b.partDone != nil {
		u.b.partDone(u.key, number)
	}
	return part.ETag, nil
}

// complete completes the upload: the object is visible from now on.
func (u *uploader) complete(ctx context.Context) error {
	if _, err := u.b.core.CompleteMultipartUpload(ctx, u.b.name, u.key, u.id, u.parts, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("s3: completing the upload of %s: %w", u.key, err)
	}
	u.id = ""
	return nil
}

// abort aborts the upload, if it was begun and not completed, doing its
// best: an upload left behind is aborted as stale later.
func (u *uploader) abort(ctx context.Context) {
	if u.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if err := u.b.core.AbortMultipartUpload(ctx, u.b.name, u.key, u.id); err != nil {
		u.b.log.Warn("could not abort an upload; it will be as stale", "key", u.key, "upload", u.id, "err", err)
		return
	}
	u.b.log.Debug("aborted an upload", "key", u.key, "upload", u.id)
	u.id = ""
}

// upload uploads the size bytes of src to key: one PUT for a small blob, a
// multipart upload for a large one.
func (b *Bucket) upload(ctx context.Context, key string, src store.SpoolFile, size int64) error {
	if size < partSize {
		return b.putObject(ctx, key, src, size)
	}
	u := &uploader{b: b, key: key, src: src}
	err := u.run(ctx, nil, func() (int64, bool) { return size, true })
	if err == nil {
		err = u.complete(ctx)
	}
	if err != nil {
		u.abort(ctx)
	}
	return err
}

// putObject uploads the size bytes of src to key in one PUT.
func (b *Bucket) putObject(ctx context.Context, key string, src store.SpoolFile, size int64) error {
	body, err := section(src, 0, size)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := b.core.PutObject(ctx, b.name, key, body, size, "", "", minio.PutObjectOptions{ContentType: blobType}); err != nil {
		return fmt.Errorf("s3: uploading %s: %w", key, err)
	}
	return nil
}

// section returns size bytes of f from off. A reader that reads at
// offsets (the filesystem's, an *os.File) gives a section reader, which
// minio-go seeks back to retry a request; others can be sent once.
func section(f store.SpoolFile, off, size int64) (io.ReadCloser, error) {
	r, err := f.Reader(off)
	if err != nil {
		return nil, err
	}
	if ra, ok := r.(io.ReaderAt); ok {
		return struct {
			*io.SectionReader
			io.Closer
		}{io.NewSectionReader(ra, off, size), r}, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(r, size), r}, nil
}

// AbortStale aborts the incomplete uploads of blobs begun more than
// olderThan ago, and returns how many it aborted: those of a process that
// died mid-fill, whose parts the bucket would keep (and bill) forever.
// A lifecycle rule on the bucket (AbortIncompleteMultipartUpload) does the
// same on servers that have them.
func (b *Bucket) AbortStale(ctx context.Context, olderThan time.Duration) (int, error) {
	prefix := b.prefix + "blobs/"
	before := time.Now().Add(-olderThan)
	aborted := 0
	var keyMarker, idMarker string
	for {
		res, err := b.core.ListMultipartUploads(ctx, b.name, prefix, keyMarker, idMarker, "", 1000)
		if err != nil {
			return aborted, fmt.Errorf("s3: listing the incomplete uploads under %s: %w", prefix, err)
		}
		for _, up := range res.Uploads {
			if !up.Initiated.Before(before) {
				continue
			}
			err := b.core.AbortMultipartUpload(ctx, b.name, up.Key, up.UploadID)
			if err != nil && errorCode(err) != "NoSuchUpload" {
				return aborted, fmt.Errorf("s3: aborting the stale upload of %s: %w", up.Key, err)
			}
			aborted++
			b.log.Info("aborted a stale upload", "key", up.Key, "upload", up.UploadID, "initiated", up.Initiated)
		}
		if !res.IsTruncated {
			return aborted, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}
