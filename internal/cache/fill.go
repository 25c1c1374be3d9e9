package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// A fill is one download of a blob from a source, shared by every client
// that asks for the blob while it runs. It reads top to bottom in this
// file: runFill looks again, download reads, writes and hashes, verify
// checks the digest, finish commits or discards, and copyRange streams the
// fill to each of its readers as the bytes arrive.
type fill struct {
	digest digest.Digest
	// source and repo are where this fill downloads from. A client of
	// another repository joins it, but does not take its failure as its
	// own (that repository may answer 404 where the client's would not).
	source, repo string
	// ready is closed once the source has answered (size is set) or the
	// fill has failed (err is set).
	ready chan struct{}
	size  int64 // -1 when the source did not say
	// hint is the size a manifest gave, before the source says (-1:
	// none), which tells how to ask for the blob (openSource).
	hint int64
	// sequential is set, by the download alone, once fetching in parts
	// (parallelBody) failed: the fill resumes as one stream.
	sequential bool

	// mu protects the fields below. Readers hold it shared while they
	// look at the state; the fill's end swaps w out under it.
	mu       sync.RWMutex
	w        store.SpoolFile
	parts    *partReader // the download's, while it fetches in parts
	written  int64
	verified bool  // every byte arrived and matches the digest
	done     bool  // committed: the store serves the blob from now on
	err      error // the fill failed; nothing was stored
	changed  chan struct{}
}

func newFill(d digest.Digest, source, repo string) *fill {
	return &fill{digest: d, source: source, repo: repo, ready: make(chan struct{}), size: -1, changed: make(chan struct{})}
}

// runFill downloads blob d once for everyone, under the cache's context,
// and commits it or fails.
func (c *Cache) runFill(src Source, f *fill) {
	defer func() {
		c.mu.Lock()
		if c.fills[f.digest] == f {
			delete(c.fills, f.digest)
		}
		c.mu.Unlock()
	}()
	// Look again: another fill may have committed between the caller's
	// miss and the start of this one.
	if size, err := c.store.Content.Stat(c.ctx, f.digest); err == nil {
		f.stored(size)
		return
	}
	c.Stats.BlobFills.Add(1)
	var fc fillClaim
	defer fc.end() // after the commit: other replicas find the claim or the blob
	err := c.download(src, f, &fc)
	if errors.Is(err, errStored) {
		size, err := c.store.Content.Stat(c.ctx, f.digest)
		if err == nil {
			f.stored(size)
			return
		}
	}
	if err == nil && fc.relayed {
		c.awaitCommit(f.digest)
	}
	if err := f.finish(c.ctx, c.store.Content, err); err != nil {
		c.Stats.BlobFillErrors.Add(1)
		c.log.Warn("blob fill failed", "upstream", src.Name(), "repo", f.repo, "digest", f.digest, "err", err)
		return
	}
	c.noteCommit()
}

// maxResumes is how many times a download whose bytes stop coming (a
// connection cut, a replica gone) resumes from where it stopped.
const maxResumes = 3

// download streams the blob into a spool file, hashing it in parallel
// (pipeHash), and returns nil only if every byte arrived and the digest
// matches. The bytes come from the source, or from the replica whose fill
// holds the cluster's claim (openFill); when they stop coming, the
// download resumes from the last byte written, from the source or from
// the claim's new owner, so that the clients sharing the fill get one
// whole, verified stream.
func (c *Cache) download(src Source, f *fill, fc *fillClaim) error {
	h := newPipeHash(f.digest.Algorithm().Hash())
	defer h.close()
	var w store.SpoolFile
	var written int64
	for attempt := 0; ; attempt++ {
		body, size, err := c.openFill(src, f, fc, written)
		if err != nil {
			return err
		}
		if attempt > 0 && size >= 0 && f.size >= 0 && written+size != f.size {
			// The answer to a resume disagrees with the first one: its
			// bytes cannot continue the others.
			body.Close()
			return fmt.Errorf("%w: upstream %q: blob %s resumed at byte %d with %d bytes more, but its size was %d",
				oci.ErrInvalid, src.Name(), f.digest, written, size, f.size)
		}
		pr, parts := body.(*partReader)
		if w == nil {
			spooled := f.digest
			if fc.relayed {
				spooled = "" // the owner stores it
			}
			if w, err = c.store.Spool.Create(c.ctx, spooled); err != nil {
				body.Close()
				return err
			}
			f.start(w, size)
		}
		f.setParts(pr)
		written, err = c.copyBody(body, w, h, f, written)
		f.setParts(nil)
		body.Close()
		var rerr *readError
		if err == nil {
			break
		}
		if !errors.As(err, &rerr) || attempt >= maxResumes || c.ctx.Err() != nil {
			return err
		}
		f.sequential = f.sequential || parts
		c.log.Warn("blob download cut short; resuming", "upstream", src.Name(), "digest", f.digest, "at", written, "from_replica", fc.relayed, "err", rerr.err)
	}
	if got := digest.NewDigest(f.digest.Algorithm(), h.sum()); got != f.digest {
		return fmt.Errorf("%w: upstream %q sent %s for blob %s", oci.ErrDigestMismatch, src.Name(), got, f.digest)
	}
	f.verify()
	return nil
}

// errLonger: a blob's bytes run past the size its source announced.
var errLonger = fmt.Errorf("%w: more bytes than announced", oci.ErrInvalid)

// readError is a failure to read the body, after which the download may
// resume; a failure to write the spool is not one.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// copyBody writes body to w, the hash and the fill, from written bytes
// into the blob, until body ends, and returns the bytes written since the
// start of the blob. Never more than the size the source announced: the
// clients' responses carry that size as their length.
func (c *Cache) copyBody(body io.Reader, w io.Writer, h *pipeHash, f *fill, written int64) (int64, error) {
	for {
		buf := h.buffer()
		n, rerr := readChunk(body, *buf, written)
		if f.size >= 0 && written+int64(n) > f.size {
			n = int(f.size - written)
			rerr = fmt.Errorf("%w: upstream %q sent more than the %d bytes it announced for blob %s", errLonger, f.source, f.size, f.digest)
		}
		var werr error
		if n > 0 {
			_, werr = w.Write((*buf)[:n])
		}
		h.write(buf, n) // every buffer goes back, even on failure
		if werr != nil {
			return written, werr
		}
		if n > 0 {
			written = f.advance(n)
		}
		if rerr == io.EOF {
			return written, nil
		}
		if errors.Is(rerr, errLonger) {
			return written, rerr // not resumable: the source is wrong
		}
		if rerr != nil {
			return written, &readError{fmt.Errorf("upstream %q: reading blob %s: %w", f.source, f.digest, rerr)}
		}
	}
}

// readChunk reads a fill's next chunk into buf, written bytes into the
// blob. The first chunk is whatever the source has sent, so that clients
// get their first bytes at once; each one after it runs to the next
// multiple of len(buf) in the blob, unless it has taken chunkWait already.
// The page cache keeps a file in folios as large as the writes that made
// it, and sendfile serves large folios faster (bench/README.md). Read
// errors come back as the reader gave them.
func readChunk(r io.Reader, buf []byte, written int64) (int, error) {
	if written == 0 {
		return r.Read(buf)
	}
	want := len(buf) - int(written%int64(len(buf)))
	start := time.Now()
	n := 0
	for n < want && time.Since(start) < chunkWait {
		m, err := r.Read(buf[n:want])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// chunkWait bounds how long a fill holds bytes back to make up a whole
// chunk: from a slow source, the clients sharing the fill get what has
// arrived at least this often. A source of 5 MB/s or more fills a chunk
// sooner.
const chunkWait = 50 * time.Millisecond

// finish ends the fill: commit the verified blob, or discard it on err.
// Commit (a sync, for a large blob slow) runs without the lock, so that
// readers, HEADs and joiners go on meanwhile; a reader whose read fails
// because the spool file moved waits for the outcome announced here.
func (f *fill) finish(ctx context.Context, content store.Content, err error) error {
	f.mu.RLock()
	w := f.w
	f.mu.RUnlock()
	switch {
	case w != nil && err == nil:
		err = content.Commit(ctx, f.digest, w)
	case w != nil:
		w.Discard()
	}
	f.mu.Lock()
	f.w = nil
	f.done, f.err = err == nil, err
	f.notify()
	f.mu.Unlock()
	select {
	case <-f.ready:
	default: // failed before the source answered
		close(f.ready)
	}
	return err
}

// waitFirstByte returns once the fill has written a byte, or ended, so that
// a failure before any byte reaches the client as an error, not as a
// response cut short.
func (f *fill) waitFirstByte(ctx context.Context) error {
	for {
		f.mu.RLock()
		started := f.written > 0 || f.verified || f.done || f.err != nil
		err, changed := f.err, f.changed
		f.mu.RUnlock()
		if started {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// copyRange writes bytes [off, end) of the blob to dst as the fill brings
// them (end < 0: to the end). Until the blob is verified it holds back the
// response's last byte, so that a client never receives a complete response
// of unverified bytes: if verification fails, the response is cut short.
//
// Each client reads the spool file through a reader of its own, so that
// the bytes go from the page cache to its socket with sendfile, and reads
// on through the same reader once the blob is committed.
func (f *fill) copyRange(ctx context.Context, content store.Content, dst io.Writer, off, end int64) error {
	var r io.ReadCloser
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	for end < 0 || off < end {
		f.mu.RLock()
		w, written, verified, done, err, changed := f.w, f.written, f.verified, f.done, f.err, f.changed
		f.mu.RUnlock()
		switch {
		case err != nil:
			return err
		case done && r == nil:
			return copyStored(ctx, content, f.digest, dst, off, end)
		}
		limit := written
		if end >= 0 {
			limit = min(limit, end)
		}
		if verified && off >= limit {
			return nil // all sent; the commit need not be waited for
		}
		if !verified {
			limit-- // held back until verified
		}
		if off < limit && r == nil && w != nil {
			// Fails only in the instant between the commit's rename
			// and done: wait for done, and serve from the store.
			if rd, err := w.Reader(off); err == nil {
				r = rd
			}
		}
		if off < limit && r != nil {
			if err := copyN(dst, r, limit-off); err != nil {
				return err
			}
			off = limit
			continue
		}
		// Past what the fill has written: a part fetched ahead may hold
		// the bytes (never the response's last one, held back as above).
		var arrived <-chan struct{}
		if parts := f.partReader(); parts != nil && off >= written && !verified {
			last := f.size - 1
			if end >= 0 {
				last = end - 1
			}
			parts.want(off)
			n, wait, err := parts.copyAt(dst, off, last)
			if err != nil {
				return err
			}
			if n > 0 {
				off += n
				if r != nil { // behind now: reopened where off is
					r.Close()
					r = nil
				}
				continue
			}
			arrived = wait
		}
		select {
		case <-changed:
		case <-arrived:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// copyStored writes bytes [off, end) of a stored blob to dst.
func copyStored(ctx context.Context, content store.Content, d digest.Digest, dst io.Writer, off, end int64) error {
	r, size, err := content.Open(ctx, d, off)
	if err != nil {
		return err
	}
	defer r.Close()
	if end < 0 {
		end = size
	}
	return copyN(dst, r, end-off)
}

// The fill's state changes, each under mu, each waking the readers.

// notify wakes every reader waiting for a change. Called with mu held.
func (f *fill) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// setParts records the part reader the download reads, or nil once it
// is done with it.
func (f *fill) setParts(r *partReader) {
	f.mu.Lock()
	f.parts = r
	f.mu.Unlock()
}

// partReader is the download's part reader, nil when it reads one
// stream.
func (f *fill) partReader() *partReader {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.parts
}

// start records the source's answer and lets waiting clients begin.
func (f *fill) start(w store.SpoolFile, size int64) {
	f.mu.Lock()
	f.w, f.size = w, size
	f.mu.Unlock()
	close(f.ready)
}

// stored ends a fill that found the blob already stored.
func (f *fill) stored(size int64) {
	f.mu.Lock()
	f.size, f.done = size, true
	f.notify()
	f.mu.Unlock()
	close(f.ready)
}

// advance records n more bytes written and returns how many there are now.
func (f *fill) advance(n int) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written += int64(n)
	f.notify()
	return f.written
}

// verify marks the bytes written as checked against the digest: clients get
// the last bytes now rather than after the commit's sync.
func (f *fill) verify() {
	f.mu.Lock()
	f.verified = true
	f.notify()
	f.mu.Unlock()
}

// failed tells whether the fill has ended in failure.
func (f *fill) failed() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.err != nil
}

// knownSize returns the blob's size once the source has told it.
func (f *fill) knownSize() (int64, bool) {
	select {
	case <-f.ready:
	default:
		return 0, false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.size, f.err == nil && f.size >= 0
}

// wait returns once the fill has ended: nil once the blob is stored.
func (f *fill) wait(ctx context.Context) error {
	for {
		f.mu.RLock()
		done, err, changed := f.done, f.err, f.changed
		f.mu.RUnlock()
		if done || err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
