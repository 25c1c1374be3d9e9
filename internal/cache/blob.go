package cache

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// Blob is a blob ready to serve: stored, or arriving through a fill.
type Blob struct {
	// Size is the blob's size, or -1 while a fill does not know it.
	Size    int64
	digest  digest.Digest
	r       io.ReadCloser // a stored blob, read from offset 0
	fill    *fill         // a fill under way
	content store.Content
	release func() // ends the read that keeps eviction away
}

// Copy writes bytes [off, end) of the blob to dst (end < 0: to the end).
// ctx is the client's: leaving stops this copy, never the fill.
func (b *Blob) Copy(ctx context.Context, dst io.Writer, off, end int64) error {
	if b.fill != nil {
		return b.fill.copyRange(ctx, b.content, dst, off, end)
	}
	if end < 0 {
		end = b.Size
	}
	if off > 0 {
		if err := b.seek(ctx, off); err != nil {
			return err
		}
	}
	return copyN(dst, b.r, end-off)
}

// seek moves the stored blob's reader to off: in place where it can seek,
// else by opening the blob again there.
func (b *Blob) seek(ctx context.Context, off int64) error {
	if s, ok := b.r.(io.Seeker); ok {
		_, err := s.Seek(off, io.SeekStart)
		return err
	}
	r, _, err := b.content.Open(ctx, b.digest, off)
	if err != nil {
		return err
	}
	b.r.Close()
	b.r = r
	return nil
}

// Close releases the blob.
func (b *Blob) Close() error {
	if b.release != nil {
		b.release()
	}
	if b.r != nil {
		return b.r.Close()
	}
	return nil
}

// Blob returns blob d of repo: from the store, from a fill under way, or
// from a new fill. It returns once the first bytes have arrived, so that the
// caller can send headers; the rest follows through Copy.
func (c *Cache) Blob(ctx context.Context, src Source, repo string, d digest.Digest) (*Blob, error) {
	if err := c.permit(src, repo, d.String()); err != nil {
		return nil, err
	}
	if b, err := c.openStored(ctx, d); b != nil || err != nil {
		return b, err
	}
	for attempt := 0; ; attempt++ {
		f, joined, err := c.joinOrStartCapped(ctx, src, repo, d)
		if err != nil {
			return nil, err
		}
		err = f.waitFirstByte(ctx)
		if err == nil {
			r := Miss
			if joined {
				r = Joined
			}
			note(ctx, r)
			return &Blob{Size: f.size, digest: d, fill: f, content: c.store.Content, release: c.pulled.open(d, c.now())}, nil
		}
		// A fill from another repository or source may fail where ours
		// would not (404, denied): try once on our own.
		if attempt > 0 || ctx.Err() != nil || (f.source == src.Name() && f.repo == repo) {
			return nil, err
		}
	}
}

// openStored returns the stored blob d, or nil and no error if it is not
// stored.
func (c *Cache) openStored(ctx context.Context, d digest.Digest) (*Blob, error) {
	r, size, err := c.store.Content.Open(ctx, d, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.Stats.BlobHits.Add(1)
	note(ctx, Hit)
	return &Blob{Size: size, digest: d, r: r, content: c.store.Content, release: c.pulled.open(d, c.now())}, nil
}

// joinOrStartCapped joins the fill of blob d under way, or starts one
// once the source's cap (MaxFills) has room for it.
func (c *Cache) joinOrStartCapped(ctx context.Context, src Source, repo string, d digest.Digest) (f *fill, joined bool, err error) {
	if f := c.joinFill(d); f != nil {
		return f, true, nil
	}
	if err := c.caps.acquire(ctx, src.Name(), capWait); err != nil {
		return nil, false, err
	}
	f, joined = c.joinOrStartFill(src, repo, d, true)
	if joined {
		c.caps.release(src.Name()) // another started it while we waited
	}
	return f, joined, nil
}

// joinFill joins the fill of d under way, if one has not failed.
func (c *Cache) joinFill(d digest.Digest) *fill {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fills[d]; f != nil && !f.failed() {
		c.Stats.BlobJoins.Add(1)
		return f
	}
	return nil
}

// joinOrStartFill returns the fill of blob d under way (joined), or starts
// one, which holds the place its caller took in the source's cap (capped).
func (c *Cache) joinOrStartFill(src Source, repo string, d digest.Digest, capped bool) (f *fill, joined bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fills[d]; f != nil && !f.failed() {
		c.Stats.BlobJoins.Add(1)
		return f, true
	}
	c.Stats.BlobMisses.Add(1)
	return c.startFill(src, repo, d, -1, false, capped), false
}

// startFill starts a fill of d, of size bytes (-1: unknown; a manifest's
// descriptor tells a prefetch). Called with c.mu held. The fill holds one
// of the source's slots while it runs: the one its caller took (slotted),
// or a free one if there is one; and the place in its cap its caller took
// (capped).
func (c *Cache) startFill(src Source, repo string, d digest.Digest, size int64, slotted, capped bool) *fill {
	slotted = slotted || c.conns.tryTake(src.Name())
	f := newFill(d, src.Name(), repo)
	f.hint = size
	c.fills[d] = f
	done := func() {
		if slotted {
			c.conns.give(src.Name())
		}
		if capped {
			c.caps.release(src.Name())
		}
	}
	run := func() {
		c.runFill(src, f)
		done()
	}
	if !c.spawn(run) {
		delete(c.fills, d)
		f.finish(c.ctx, c.store.Content, ErrClosed)
		done()
	}
	return f
}

// StatBlob returns the size of blob d without downloading it: from the
// store, from a fill under way, or from the source.
func (c *Cache) StatBlob(ctx context.Context, src Source, repo string, d digest.Digest) (int64, error) {
	if err := c.permit(src, repo, d.String()); err != nil {
		return 0, err
	}
	size, err := c.store.Content.Stat(ctx, d)
	if err == nil {
		note(ctx, Hit)
	}
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return size, err
	}
	c.mu.Lock()
	f := c.fills[d]
	c.mu.Unlock()
	if f != nil {
		if size, ok := f.knownSize(); ok {
			note(ctx, Joined)
			return size, nil
		}
	}
	size, err = src.StatBlob(ctx, repo, d)
	if err == nil {
		note(ctx, Miss) // asked the source; nothing stored
	}
	return size, err
}

// Filling returns the number of blob fills under way.
func (c *Cache) Filling() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fills)
}

// sendChunk bounds each sendfile call, as nginx's sendfile_max_chunk does
// (its measured gain is in bench/README.md).
const sendChunk = 2 << 20

// copyN writes the next n bytes of r to dst, in chunks of sendChunk. With
// an *os.File source and an http.ResponseWriter destination, every chunk
// goes out with sendfile.
func copyN(dst io.Writer, r io.Reader, n int64) error {
	for n > 0 {
		m, err := io.Copy(dst, io.LimitReader(r, min(n, sendChunk)))
		n -= m
		if err != nil {
			return err
		}
		if m == 0 {
			return io.ErrUnexpectedEOF
		}
	}
	return nil
}

// FillState is a fill under way, as the dashboard shows it.
type FillState struct {
	Source, Repo string
	Digest       digest.Digest
	// Size is -1 while the source has not said; Written counts the bytes
	// arrived.
	Size, Written int64
}

// Fills returns the blob fills under way.
func (c *Cache) Fills() []FillState {
	c.mu.Lock()
	fills := make([]*fill, 0, len(c.fills))
	for _, f := range c.fills {
		fills = append(fills, f)
	}
	c.mu.Unlock()
	out := make([]FillState, len(fills))
	for i, f := range fills {
		f.mu.RLock()
		out[i] = FillState{Source: f.source, Repo: f.repo, Digest: f.digest, Size: -1, Written: f.written}
		f.mu.RUnlock()
		if size, ok := f.knownSize(); ok {
			out[i].Size = size
		}
	}
	return out
}

// Usage is how much the store's content holds.
func (c *Cache) Usage(ctx context.Context) (store.Usage, error) { return c.store.Content.Usage(ctx) }

// MaxSize is the store's bound (0: none).
func (c *Cache) MaxSize() int64 { return c.limits.MaxSize }

// BlobURL returns a URL that serves stored blob d for expiry, from the
// store's backend (a presigned object store URL), or "" when the blob is
// not stored (it is filled and streamed) or the store cannot give one.
func (c *Cache) BlobURL(ctx context.Context, src Source, repo string, d digest.Digest, expiry time.Duration) (string, error) {
	rd, ok := c.store.Content.(store.Redirector)
	if !ok {
		return "", nil
	}
	if err := c.permit(src, repo, d.String()); err != nil {
		return "", err
	}
	if _, err := c.store.Content.Stat(ctx, d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		return "", err
	}
	u, err := rd.URL(ctx, d, expiry)
	if err != nil {
		c.log.Warn("no URL for a stored blob; serving it", "digest", d, "err", err)
		return "", nil
	}
	c.Stats.BlobHits.Add(1)
	c.pulled.touch(d, c.now())
	note(ctx, Hit) // a redirect is a hit: the bytes come from the store
	return u, nil
}
