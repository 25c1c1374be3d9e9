package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// Blob is a blob ready to serve: stored, or arriving through a fill.
type Blob struct {
	// Size is the blob's size, or -1 while a fill does not know it.
	Size  int64
	file  io.ReadSeekCloser // a stored blob
	fill  *fill             // a fill under way
	store store.Store
}

// Copy writes bytes [off, end) of the blob to dst (end < 0: to the end).
// ctx is the client's: leaving stops this copy, never the fill.
func (b *Blob) Copy(ctx context.Context, dst io.Writer, off, end int64) error {
	if b.file != nil {
		return copySection(dst, b.file, off, end, b.Size)
	}
	return b.fill.copyRange(ctx, b.store, dst, off, end)
}

// Stored reports whether the blob is served whole from the store, rather
// than as a fill delivers it.
func (b *Blob) Stored() bool { return b.file != nil }

// Close releases the blob.
func (b *Blob) Close() error {
	if b.file != nil {
		return b.file.Close()
	}
	return nil
}

// Blob returns blob d of repo: from the store, from a fill under way, or
// from a new fill. It returns once the first bytes have arrived, so that the
// caller can send headers; the rest follows through Copy.
func (c *Cache) Blob(ctx context.Context, up *Upstream, repo string, d digest.Digest) (*Blob, error) {
	if b, err := c.openStored(ctx, d); b != nil || err != nil {
		return b, err
	}
	for attempt := 0; ; attempt++ {
		f := c.joinOrStartFill(up, repo, d)
		err := f.waitFirstByte(ctx)
		if err == nil {
			return &Blob{Size: f.size, fill: f, store: c.store}, nil
		}
		// A fill from another repository or upstream may fail where
		// ours would not (404, denied): try once on our own.
		if attempt > 0 || ctx.Err() != nil || (f.upstream == up.Name() && f.repo == repo) {
			return nil, err
		}
	}
}

// joinOrStartFill returns the fill of blob d under way, or starts one.
func (c *Cache) joinOrStartFill(up *Upstream, repo string, d digest.Digest) *fill {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fills[d]; f != nil && !f.failed() {
		c.Stats.BlobJoins.Add(1)
		return f
	}
	c.Stats.BlobMisses.Add(1)
	return c.startFill(up, repo, d, false)
}

// startFill starts a fill of d. Called with c.mu held. The fill holds one
// of the upstream's prefetch slots while it runs: the one its caller took
// (slotted), or a free one if there is one.
func (c *Cache) startFill(up *Upstream, repo string, d digest.Digest, slotted bool) *fill {
	slots := c.slotsOf(up)
	if !slotted && slots != nil {
		select {
		case slots <- struct{}{}:
			slotted = true
		default:
		}
	}
	f := newFill(d, up.Name(), repo)
	c.fills[d] = f
	run := func() {
		c.runFill(up, f)
		if slotted {
			<-slots
		}
	}
	if !c.spawn(run) {
		delete(c.fills, d)
		f.finish(c.ctx, ErrClosed)
		if slotted {
			<-slots
		}
	}
	return f
}

// openStored returns the stored blob d, or nil and no error if it is not
// stored.
func (c *Cache) openStored(ctx context.Context, d digest.Digest) (*Blob, error) {
	r, size, err := c.store.Open(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.Stats.BlobHits.Add(1)
	return &Blob{Size: size, file: r}, nil
}

// runFill downloads blob d once for everyone, under the cache's context.
func (c *Cache) runFill(up *Upstream, f *fill) {
	defer func() {
		c.mu.Lock()
		if c.fills[f.digest] == f {
			delete(c.fills, f.digest)
		}
		c.mu.Unlock()
	}()
	// Look again: another fill may have committed between the caller's
	// miss and its start of this one.
	if size, err := c.store.Stat(c.ctx, f.digest); err == nil {
		f.stored(size)
		return
	}
	c.Stats.BlobFills.Add(1)
	if err := f.finish(c.ctx, c.download(up, f)); err != nil {
		c.Stats.BlobFillErrors.Add(1)
		c.log.Warn("blob fill failed", "upstream", up.Name(), "repo", f.repo, "digest", f.digest, "err", err)
	}
}

// download streams the upstream's body into the store, hashing it in
// parallel (pipeHash), and returns nil only if every byte arrived and the
// digest matches.
func (c *Cache) download(up *Upstream, f *fill) error {
	resp, err := up.Do(c.ctx, http.MethodGet, f.repo, "blobs/"+f.digest.String(), nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w, err := c.store.Create(c.ctx)
	if err != nil {
		return err
	}
	f.start(w, resp.ContentLength)

	h := newPipeHash(f.digest.Algorithm().Hash())
	defer h.close()
	var written int64
	for {
		buf := h.buffer()
		n, rerr := readChunk(resp.Body, *buf, written)
		var werr error
		if n > 0 {
			_, werr = w.Write((*buf)[:n])
		}
		h.write(buf, n) // every buffer goes back, even on failure
		if werr != nil {
			return werr
		}
		if n > 0 {
			written = f.advance(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("upstream %q: reading blob %s: %w", up.Name(), f.digest, rerr)
		}
	}
	if got := digest.NewDigest(f.digest.Algorithm(), h.sum()); got != f.digest {
		return fmt.Errorf("%w: upstream %q sent %s for blob %s", ErrDigestMismatch, up.Name(), got, f.digest)
	}
	f.verify()
	return nil
}

// readChunk reads a fill's next chunk into buf, written bytes into the
// blob. The first chunk is whatever the upstream has sent, so that clients
// get their first bytes at once; each one after it runs to the next
// multiple of len(buf) in the blob, unless it has taken chunkWait already.
// The page cache keeps a file in folios as large as the writes that made
// it, and sendfile serves large folios faster: a blob stored in the sizes
// the network reads happen to return served a lone client about a tenth
// slower (bench/README.md). Read errors come back as the reader gave them.
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
// chunk: from a slow upstream, the clients sharing the fill get what has
// arrived at least this often. An upstream of 5 MB/s or more fills a chunk
// sooner.
const chunkWait = 50 * time.Millisecond

// StatBlob returns the size of blob d without downloading it: from the
// store, from a fill under way, or from an upstream HEAD.
func (c *Cache) StatBlob(ctx context.Context, up *Upstream, repo string, d digest.Digest) (int64, error) {
	size, err := c.store.Stat(ctx, d)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return size, err
	}
	c.mu.Lock()
	f := c.fills[d]
	c.mu.Unlock()
	if f != nil {
		select {
		case <-f.ready:
			f.mu.RLock()
			size, err := f.size, f.err
			f.mu.RUnlock()
			if err == nil && size >= 0 {
				return size, nil
			}
		default:
		}
	}
	resp, err := up.Do(ctx, http.MethodHead, repo, "blobs/"+d.String(), nil, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return 0, fmt.Errorf("%w: upstream %q announced %s for blob %s", ErrDigestMismatch, up.Name(), got, d)
	}
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("%w: upstream %q sent no size for blob %s", ErrBadUpstream, up.Name(), d)
	}
	return resp.ContentLength, nil
}

// Filling returns the number of blob fills under way.
func (c *Cache) Filling() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fills)
}
