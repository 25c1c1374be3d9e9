package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// locationTTL bounds how long the URL a blob redirected to is used again
// without asking the registry. Docker Hub's CDN URLs and S3's presigned
// ones live for longer; one that expires sooner fails (403) and is
// forgotten then.
const locationTTL = 5 * time.Minute

// locations remembers, per blob digest, the URL the registry redirected
// its last GET to (Docker Hub sends blobs to a CDN), so that the parts of
// a parallel fetch go there at once rather than each paying the
// registry's round trip, its token and its redirect. It holds the
// locations of the blobs being fetched: a few, forgotten after
// locationTTL.
type locations struct {
	mu sync.Mutex
	m  map[digest.Digest]location
}

type location struct {
	url   string
	until time.Time
}

// maxLocations bounds the locations remembered; past it, the oldest
// half is forgotten.
const maxLocations = 256

func (l *locations) get(d digest.Digest, now time.Time) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	loc, ok := l.m[d]
	if !ok || now.After(loc.until) {
		delete(l.m, d)
		return "", false
	}
	return loc.url, true
}

func (l *locations) add(d digest.Digest, url string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[digest.Digest]location{}
	}
	if len(l.m) >= maxLocations {
		for k, loc := range l.m {
			if loc.until.Before(now.Add(locationTTL / 2)) {
				delete(l.m, k)
			}
		}
	}
	if len(l.m) < maxLocations {
		l.m[d] = location{url, now.Add(locationTTL)}
	}
}

func (l *locations) forget(d digest.Digest) {
	l.mu.Lock()
	delete(l.m, d)
	l.mu.Unlock()
}

// OpenRange returns bytes [off, end) of blob d, unverified: the caller
// reads exactly end-off bytes and checks that no more follow. The request
// goes to the URL the blob last redirected to while that answers, else to
// the registry (whose redirect is remembered). An upstream that answers
// with the whole blob is an error that wraps oci.ErrUnsupported; one whose Content-Range is not
// the range asked for is oci.ErrInvalid.
func (c *Client) OpenRange(ctx context.Context, repo string, d digest.Digest, off, end int64) (io.ReadCloser, error) {
	if off < 0 || end <= off {
		return nil, fmt.Errorf("upstream %q: invalid range [%d, %d) of blob %s", c.name, off, end, d)
	}
	header := http.Header{"Range": {"bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(end-1, 10)}}
	if loc, ok := c.locations.get(d, c.now()); ok {
		resp, err := c.send(ctx, http.MethodGet, "blob", loc, header, "")
		if err == nil && resp.StatusCode < 300 {
			return c.checkRange(resp, d, off, end)
		}
		if err == nil {
			resp.Body.Close()
		}
		// Expired or gone: ask the registry again.
		c.locations.forget(d)
		if ctx.Err() != nil {
			return nil, c.transportError(ctx.Err())
		}
	}
	resp, err := c.Do(ctx, http.MethodGet, repo, "blobs/"+d.String(), nil, header)
	if err != nil {
		return nil, err
	}
	if final := resp.Request.URL; final.Host != c.base.Host || final.Scheme != c.base.Scheme {
		c.locations.add(d, final.String(), c.now())
	}
	return c.checkRange(resp, d, off, end)
}

// checkRange returns resp's body if resp is the 206 of bytes [off, end).
func (c *Client) checkRange(resp *http.Response, d digest.Digest, off, end int64) (io.ReadCloser, error) {
	if resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: upstream %q ignores byte ranges: it answered a range request of blob %s with %d", oci.ErrUnsupported, c.name, d, resp.StatusCode)
	}
	var first, last int64
	var total string
	cr := resp.Header.Get("Content-Range")
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%s", &first, &last, &total); err != nil || first != off || last != end-1 ||
		(resp.ContentLength >= 0 && resp.ContentLength != end-off) {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: upstream %q answered range %d-%d of blob %s with Content-Range %q and length %d", oci.ErrInvalid, c.name, off, end-1, d, cr, resp.ContentLength)
	}
	return resp.Body, nil
}

// OpenHead opens blob d for a fill that fetches it in parts, knowing its
// size from a manifest: it asks for the first n bytes only, so that none
// is sent twice (the other parts come by OpenRange). The reader gives at
// least the first got bytes of the blob (all of them when got == size),
// and the caller reads no more than got; size is the blob's (-1 when the
// upstream did not say, with got -1 too: read to the end). An upstream
// that ignores the range sends the whole blob, then read as one stream;
// one that refuses it (416: the blob is smaller than its manifest said)
// is asked for the whole blob.
func (c *Client) OpenHead(ctx context.Context, repo string, d digest.Digest, n int64) (body io.ReadCloser, got, size int64, err error) {
	resp, err := c.getFirst(ctx, repo, d, n, true)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusRequestedRangeNotSatisfiable {
		resp, err = c.getFirst(ctx, repo, d, n, false)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	if final := resp.Request.URL; final.Host != c.base.Host || final.Scheme != c.base.Scheme {
		c.locations.add(d, final.String(), c.now())
	}
	if resp.StatusCode != http.StatusPartialContent {
		return resp.Body, resp.ContentLength, resp.ContentLength, nil
	}
	var first, last, total int64
	cr := resp.Header.Get("Content-Range")
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &first, &last, &total); err != nil || first != 0 || last >= total || last >= n ||
		(resp.ContentLength >= 0 && resp.ContentLength != last+1) {
		resp.Body.Close()
		return nil, 0, 0, fmt.Errorf("%w: upstream %q answered range 0-%d of blob %s with Content-Range %q and length %d", oci.ErrInvalid, c.name, n-1, d, cr, resp.ContentLength)
	}
	return resp.Body, last + 1, total, nil
}

// getFirst GETs blob d: its first n bytes when ranged, else all of it.
func (c *Client) getFirst(ctx context.Context, repo string, d digest.Digest, n int64, ranged bool) (*http.Response, error) {
	var header http.Header
	if ranged {
		header = http.Header{"Range": {"bytes=0-" + strconv.FormatInt(n-1, 10)}}
	}
	return c.Do(ctx, http.MethodGet, repo, "blobs/"+d.String(), nil, header)
}
