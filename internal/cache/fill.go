package cache

import (
	"context"
	"io"
	"sync"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// fill is one upstream download of a blob, shared by every client that asks
// for the blob while it runs.
type fill struct {
	digest digest.Digest
	// upstream and repo are where this fill downloads from. A client of
	// another repository joins it, but does not take its failure as its
	// own (that repository may answer 404 where the client's would not).
	upstream, repo string
	// ready is closed once the upstream has answered (size is set) or the
	// fill has failed (err is set).
	ready chan struct{}
	size  int64 // -1 when the upstream did not say
	// ended is closed when the fill has committed or failed.
	ended chan struct{}

	// mu protects the fields below. Readers hold it shared while they read
	// back from w; the fill's end swaps w out under it.
	mu       sync.RWMutex
	w        store.Writer
	written  int64
	verified bool  // every byte arrived and matches the digest
	done     bool  // committed: the store serves the blob from now on
	err      error // the fill failed; nothing was stored
	changed  chan struct{}
}

func newFill(d digest.Digest, upstream, repo string) *fill {
	return &fill{digest: d, upstream: upstream, repo: repo, ready: make(chan struct{}), ended: make(chan struct{}), size: -1, changed: make(chan struct{})}
}

// notify wakes every reader waiting for a change. Called with mu held.
func (f *fill) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// start records the upstream's answer and lets waiting clients begin.
func (f *fill) start(w store.Writer, size int64) {
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
	close(f.ended)
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

// finish ends the fill: commit the verified blob, or cancel it on err.
// Commit (a sync, for a large blob slow) runs without the lock, so that
// readers, HEADs and joiners go on meanwhile; a reader whose read fails
// because the writer closed waits for the outcome announced here.
func (f *fill) finish(ctx context.Context, err error) error {
	f.mu.RLock()
	w := f.w
	f.mu.RUnlock()
	switch {
	case w != nil && err == nil:
		err = w.Commit(ctx, f.digest)
	case w != nil:
		w.Cancel()
	}
	f.mu.Lock()
	f.w = nil
	f.done, f.err = err == nil, err
	f.notify()
	f.mu.Unlock()
	select {
	case <-f.ready:
	default: // failed before the upstream answered
		close(f.ready)
	}
	close(f.ended)
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
// Each client reads the fill's file through a reader of its own, so that
// the bytes go from the page cache to its socket with sendfile, and reads
// on through the same reader once the blob is committed.
func (f *fill) copyRange(ctx context.Context, s store.Store, dst io.Writer, off, end int64) error {
	var r io.ReadSeekCloser
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
			return copyStored(ctx, s, f.digest, dst, off, end)
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
		if off < limit && r == nil {
			// Fails only in the instant between the commit's rename
			// and done: wait for done, and serve from the store.
			if rd, err := w.Reader(); err == nil {
				r = rd
			}
		}
		if off < limit && r != nil {
			if err := copySection(dst, r, off, limit, -1); err != nil {
				return err
			}
			off = limit
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// copyStored writes bytes [off, end) of a stored blob to dst.
func copyStored(ctx context.Context, s store.Store, d digest.Digest, dst io.Writer, off, end int64) error {
	r, size, err := s.Open(ctx, d)
	if err != nil {
		return err
	}
	defer r.Close()
	return copySection(dst, r, off, end, size)
}

// sendChunk bounds each sendfile call, as nginx's sendfile_max_chunk does.
// Go's sendfile asks for everything that is left in one call; on loopback,
// 2 MiB calls serve a large blob to one client about 15 % faster.
const sendChunk = 2 << 20

// copySection writes bytes [off, end) of r to dst (end < 0: to size). With
// an *os.File source and an http.ResponseWriter destination, every chunk
// goes out with sendfile.
func copySection(dst io.Writer, r io.ReadSeeker, off, end, size int64) error {
	if end < 0 {
		end = size
	}
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return err
	}
	for off < end {
		n, err := io.Copy(dst, io.LimitReader(r, min(end-off, sendChunk)))
		off += n
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
	}
	return nil
}
