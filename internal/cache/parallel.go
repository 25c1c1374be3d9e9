package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// Parallel is how a source's large blobs are fetched: a blob of at least
// MinSize bytes as byte ranges of PartSize bytes, up to Parts of them under
// way at once, lowest offsets first; one of PartSize to MinSize bytes as
// its first PartSize bytes and the rest, at once. MinSize 0 never fetches
// in parts.
//
// A blob whose size no manifest told is asked for whole; when its first
// streamProbe bytes arrive at StreamRate bytes a second or faster, the
// fill goes on with that answer alone: a source that near gains nothing
// from parts. StreamRate 0 always fetches in parts.
type Parallel struct {
	MinSize    int64
	Parts      int
	PartSize   int64
	StreamRate int64
}

// streamProbe is how many of a blob's first bytes tell how fast its
// source sends: well past what a token bucket lets out at once or a
// socket's buffer holds (a few hundred KiB), few enough to cost a far
// source some tens of milliseconds.
const streamProbe = 1 << 20

// A RangeSource is a Source that serves byte ranges of blobs: a fill of a
// large blob fetches several of them at once (Parallel).
//
// OpenHead opens blob d, whose size a manifest told, asking for its first
// n bytes only: the reader gives at least the first got bytes, of which
// no more are read (all of them when got == size; got and size are -1
// when the source did not say, and the reader runs to the end).
// OpenRange returns bytes [off, end), unverified; an answer with more or
// fewer of them is the source's fault, and one that carries the whole blob
// an error that wraps oci.ErrUnsupported: asking again is no use.
type RangeSource interface {
	Source
	OpenHead(ctx context.Context, repo string, d digest.Digest, n int64) (body io.ReadCloser, got, size int64, err error)
	OpenRange(ctx context.Context, repo string, d digest.Digest, off, end int64) (io.ReadCloser, error)
}

// partTries is how many times a part is asked for, each time from where
// its bytes stopped, before the fill falls back to one stream.
const partTries = 3

// errPartLonger is an answer to a range request with more bytes than the
// range holds.
var errPartLonger = errors.New("the answer holds more bytes than the range asked for")

// openSource opens blob f.digest from off at the source, and returns the
// length the reader will give (-1 when unknown). From a source that serves
// ranges, a blob larger than PartSize comes in parts at once (partReader):
// of PartSize bytes, Parts at a time, for a blob of MinSize or more, else
// as its first part and the rest. The first part comes from the first
// answer: a range of it when a manifest told the blob's size (f.hint),
// else the whole blob's answer, read that far and closed. A smaller blob
// is asked for whole. The fill reads either reader as the one stream, in
// order, hashing as it goes: only the bytes come sooner.
func (c *Cache) openSource(src Source, f *fill, off int64) (io.ReadCloser, int64, error) {
	rs, ok := src.(RangeSource)
	p := c.parallel[src.Name()]
	if !ok || f.sequential || off > 0 || p.MinSize <= 0 || p.Parts < 2 || p.PartSize <= 0 || (f.hint >= 0 && f.hint <= p.PartSize) {
		return src.OpenBlob(c.ctx, f.repo, f.digest, off)
	}
	var body io.ReadCloser
	var got, size int64
	var err error
	open := f.hint < 0
	if open {
		body, size, err = src.OpenBlob(c.ctx, f.repo, f.digest, 0)
		if err == nil && size > p.PartSize && p.StreamRate > 0 {
			var fast bool
			if body, fast = probeRate(body, p.StreamRate, c.now); fast {
				return body, size, nil
			}
		}
		got = min(size, p.PartSize)
	} else {
		body, got, size, err = rs.OpenHead(c.ctx, f.repo, f.digest, p.PartSize)
	}
	if err != nil || size < 0 || got >= size {
		return body, size, err
	}
	partSize := p.PartSize
	if size < p.MinSize {
		partSize = size - got
	}
	ctx, cancel := context.WithCancel(c.ctx)
	r := &partReader{
		c: c, src: rs, repo: f.repo, d: f.digest, ctx: ctx, cancel: cancel,
		end: size, partSize: partSize, window: p.Parts, changed: make(chan struct{}),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	head := r.newPart(got)
	if !c.spawn(func() { r.fetch(head, body, true) }) {
		body.Close()
		cancel()
		return nil, 0, ErrClosed
	}
	r.schedule()
	return r, size, nil
}

// probeRate reads the first streamProbe bytes of body and tells whether
// they came at rate bytes a second or faster; the reader it returns gives
// body's bytes from the first. A read that fails counts as fast: the one
// stream then fails as it would have.
func probeRate(body io.ReadCloser, rate int64, now func() time.Time) (io.ReadCloser, bool) {
	buf := make([]byte, streamProbe)
	start := now()
	n, err := io.ReadFull(body, buf)
	elapsed := now().Sub(start)
	replay := struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf[:n]), body), body}
	if err != nil {
		return replay, true
	}
	return replay, elapsed <= 0 || float64(n)/elapsed.Seconds() >= float64(rate)
}

// A partReader reads a blob's bytes [next, end) in order while they arrive
// as parts fetched at once. The parts under way and those arrived but not
// read yet are at most window, so a fill holds at most window × partSize
// bytes in memory. The first part comes from the source's first answer
// (which the fill opened as one stream, and which is closed past it); each
// other part is a range request on a connection of the source's budget
// (Cache.conns), taken only while one is free: clients' own fills and
// prefetches keep theirs.
type partReader struct {
	c        *Cache
	src      RangeSource
	repo     string
	d        digest.Digest
	ctx      context.Context // ends with Close: the parts under way stop
	cancel   context.CancelFunc
	end      int64
	partSize int64
	window   int

	// mu protects the fields below and the parts' state.
	mu    sync.Mutex
	queue []*part // in offset order from where the reader is; queue[0] is being read
	// ahead are parts past next that a client asked for (want), by
	// offset: fetched before the others, read when next reaches them;
	// pending are those of them not started yet.
	ahead   map[int64]*part
	pending []*part
	read    int   // bytes of queue[0] read
	next    int64 // where the next part to start begins
	held    int   // connections taken from the budget
	idle    int   // of those, how many no part uses
	closed  bool
	changed chan struct{} // closed when a part's state changes
}

// A part is bytes [off, end) of the blob, arriving in buf.
type part struct {
	off, end int64
	buf      []byte
	n        int   // bytes arrived, under the reader's mu
	done     bool  // every byte arrived, or err is set
	err      error // fetching failed for good
}

// newPart queues the part of n bytes that starts at next. Called with mu
// held.
func (r *partReader) newPart(n int64) *part {
	p := &part{off: r.next, end: min(r.next+n, r.end)}
	p.buf = getPartBuf(int(p.end - p.off))
	r.next = p.end
	r.queue = append(r.queue, p)
	return p
}

// schedule starts parts while the window has room and the budget a
// connection, the parts clients asked for first, and gives back the
// connections no part needs. Called with mu held.
func (r *partReader) schedule() {
	for !r.closed {
		if a := r.ahead[r.next]; a != nil && len(r.queue) < r.window {
			// Asked for already: it joins the queue where it belongs.
			delete(r.ahead, r.next)
			r.queue = append(r.queue, a)
			r.next = a.end
			continue
		}
		inOrder := r.next < r.end && len(r.queue) < r.window && r.ahead[r.next] == nil
		if len(r.pending) == 0 && !inOrder {
			break
		}
		if r.idle == 0 {
			if !r.c.conns.tryTake(r.src.Name()) {
				break
			}
			r.held++
			r.idle++
		}
		var p *part
		if len(r.pending) > 0 {
			p, r.pending = r.pending[0], r.pending[1:]
		} else {
			p = r.newPart(r.partSize)
		}
		if !r.c.spawn(func() { r.fetch(p, nil, false) }) {
			r.closed = true // the cache is closing
			break
		}
		r.idle--
	}
	// The connections are alike: the fill's own (the first answer's) is
	// kept, the budget's go back.
	for ; r.idle > 0 && r.held > 0; r.idle-- {
		r.c.conns.give(r.src.Name())
		r.held--
	}
}

// fetch fetches part p: from body first, when given (the fill's first
// answer, which holds p and, when open, more), then by range requests
// from where the bytes stopped, up to partTries times. It frees its
// connection for the next part when it ends.
func (r *partReader) fetch(p *part, body io.ReadCloser, open bool) {
	var err error
	for try := 0; try < partTries; try++ {
		if body == nil {
			r.mu.Lock()
			from := p.off + int64(p.n)
			r.mu.Unlock()
			if from == p.end {
				// Every byte arrived, and more after them: the digest
				// tells whether they were the right ones.
				err = nil
				break
			}
			if body, err = r.src.OpenRange(r.ctx, r.repo, r.d, from, p.end); err != nil {
				if errors.Is(err, oci.ErrUnsupported) || r.ctx.Err() != nil {
					break
				}
				continue
			}
		}
		err = r.receive(p, body, open)
		body.Close()
		body, open = nil, false
		if err == nil || r.ctx.Err() != nil {
			break
		}
		r.c.log.Debug("blob part cut short; asking again", "upstream", r.src.Name(), "digest", r.d, "part", p.off, "err", err)
	}
	if err != nil {
		err = fmt.Errorf("upstream %q: bytes %d-%d of blob %s: %w", r.src.Name(), p.off, p.end-1, r.d, err)
	}
	r.mu.Lock()
	p.done, p.err = true, err
	r.notify()
	r.idle++ // for the next part, or back to the budget
	r.schedule()
	r.mu.Unlock()
}

// receive reads p's missing bytes from body, which holds no more unless
// it is open (the first answer, which runs past p).
func (r *partReader) receive(p *part, body io.Reader, open bool) error {
	for {
		r.mu.Lock()
		n := p.n
		r.mu.Unlock()
		if n == len(p.buf) {
			break
		}
		m, err := body.Read(p.buf[n:min(n+partRead, len(p.buf))])
		if m > 0 {
			r.mu.Lock()
			p.n += m
			r.notify()
			r.mu.Unlock()
		}
		if err == io.EOF && n+m < len(p.buf) {
			return io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	if open {
		return nil
	}
	var extra [1]byte
	if n, _ := io.ReadFull(body, extra[:]); n > 0 {
		return errPartLonger
	}
	return nil
}

// partRead is the most a part reads from its answer before the fill's
// reader sees the bytes.
const partRead = 256 << 10

// notify wakes the reader. Called with mu held.
func (r *partReader) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Read gives the blob's next bytes, once they have arrived.
func (r *partReader) Read(b []byte) (int, error) {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.mu.Unlock()
			return 0, io.EOF
		}
		p, read, changed := r.queue[0], r.read, r.changed
		if read < p.n {
			n := copy(b, p.buf[read:p.n])
			r.read += n
			if r.read == len(p.buf) {
				r.queue = r.queue[1:]
				r.read = 0
				putPartBuf(p.buf)
				r.schedule()
			}
			r.mu.Unlock()
			return n, nil
		}
		err := p.err
		r.mu.Unlock()
		if err != nil {
			return 0, err
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// maxAhead bounds the parts past the reader's that clients may ask for at
// once, each of which holds its bytes in memory until the reader gets
// there.
const maxAhead = 2

// want asks for the part that holds byte off next, unless it is under way
// or the reader is past it: a client wants a range there.
func (r *partReader) want(off int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || off < r.next || off >= r.end || len(r.ahead) >= maxAhead {
		return
	}
	start := r.next + (off-r.next)/r.partSize*r.partSize
	if r.ahead[start] != nil {
		return
	}
	p := &part{off: start, end: min(start+r.partSize, r.end)}
	p.buf = getPartBuf(int(p.end - p.off))
	if r.ahead == nil {
		r.ahead = map[int64]*part{}
	}
	r.ahead[start] = p
	r.pending = append(r.pending, p)
	r.schedule()
}

// copyAt writes to dst the bytes from off on, short of limit, that have
// arrived in a part the reader has not begun to read: a client's range
// ahead of the fill. It returns how many it wrote, and, when there were
// none, a channel closed once more arrive. (The part being read is the
// spool's soon: clients get it from there, with sendfile.)
func (r *partReader) copyAt(dst io.Writer, off, limit int64) (int64, <-chan struct{}, error) {
	r.mu.Lock()
	var p *part
	for _, q := range r.queue[min(1, len(r.queue)):] {
		if q.off <= off && off < q.end {
			p = q
		}
	}
	for _, q := range r.ahead {
		if q.off <= off && off < q.end {
			p = q
		}
	}
	if p == nil || off >= p.off+int64(p.n) || off >= limit {
		changed := r.changed
		r.mu.Unlock()
		return 0, changed, nil
	}
	// Copied out under the lock: once the reader has read the part, its
	// buffer serves another.
	n := min(p.off+int64(p.n), limit) - off
	n = min(n, partRead)
	buf := make([]byte, n)
	copy(buf, p.buf[off-p.off:])
	r.mu.Unlock()
	if _, err := dst.Write(buf); err != nil {
		return 0, nil, err
	}
	// Out now, not when a buffer fills: the rest may be a while.
	if f, ok := dst.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return 0, nil, err
		}
	}
	return n, nil, nil
}

// Close stops the parts under way; their connections go back as they end.
func (r *partReader) Close() error {
	r.cancel()
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// Part buffers are reused, by size: a fill of a large blob goes through
// many of them.
var partBufs sync.Map // int → *sync.Pool of *[]byte

func getPartBuf(n int) []byte {
	pool, _ := partBufs.LoadOrStore(n, &sync.Pool{New: func() any { b := make([]byte, n); return &b }})
	return *pool.(*sync.Pool).Get().(*[]byte)
}

func putPartBuf(b []byte) {
	if pool, ok := partBufs.Load(len(b)); ok {
		pool.(*sync.Pool).Put(&b)
	}
}
