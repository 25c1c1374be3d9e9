package registry

import (
	"context"
	"crypto/sha256"
	"hash"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// Write-through of blob uploads: the bytes of an upload through the cache
// are spooled and hashed as they stream to the upstream, over the upload's
// POST, PATCHes and PUT, and the blob is committed once the upstream has
// accepted the final PUT and the bytes hash to its digest. An upload whose
// requests do not follow on from each other here (a chunk refused, an
// offset that does not match, a request that went to another replica) is
// still forwarded, but stores nothing. An upload left alone for
// uploadIdle is dropped with its spool file.

// uploadIdle is how long an upload may go without a request before its
// spooled bytes are dropped.
var uploadIdle = 30 * time.Minute

// writes are the uploads under way, by upstream, repository and session.
type writes struct {
	cache *cache.Cache
	log   *slog.Logger

	mu sync.Mutex
	m  map[string]*upload
}

func newWrites(c *cache.Cache, log *slog.Logger) *writes {
	return &writes{cache: c, log: log, m: map[string]*upload{}}
}

// upload is one blob upload's bytes so far. Write never fails: a spool
// that cannot take the bytes breaks the write-through, not the push.
type upload struct {
	key   string // "" for a whole upload in one POST, not kept
	mu    sync.Mutex
	f     store.SpoolFile // nil until the first byte
	h     hash.Hash
	n     int64
	bad   bool
	timer *time.Timer
}

func (u *upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bad || len(p) == 0 {
		return len(p), nil
	}
	if _, err := u.f.Write(p); err != nil {
		u.bad = true
		return len(p), nil
	}
	u.h.Write(p)
	u.n += int64(len(p))
	return len(p), nil
}

// track returns the upload a request of the upload API adds bytes to, or
// nil: a POST that starts an upload has none yet, a request of an upload
// not begun here has none.
func (w *writes) track(base, session string, r *http.Request, d digest.Digest) *upload {
	if w == nil || w.cache == nil {
		return nil
	}
	switch {
	case r.Method == http.MethodPost && d != "" && r.ContentLength != 0:
		return w.open(r) // a whole blob in one POST
	case r.Method != http.MethodPatch && r.Method != http.MethodPut:
		return nil
	}
	w.mu.Lock()
	u := w.m[base+"/"+session]
	w.mu.Unlock()
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.timer.Reset(uploadIdle)
	if start, ok := rangeStart(r.Header.Get("Content-Range")); ok && start != u.n {
		u.bad = true // a chunk that does not follow on from ours
	}
	if u.f == nil && !u.bad {
		f, err := w.cache.PushSpool(r.Context())
		if err != nil {
			u.bad = true
		}
		u.f = f
	}
	return u
}

// open starts the write-through of an upload in one request.
func (w *writes) open(r *http.Request) *upload {
	u := &upload{h: sha256.New()}
	f, err := w.cache.PushSpool(r.Context())
	if err != nil {
		return nil
	}
	u.f = f
	return u
}

// answered takes the upstream's answer to a request of the upload API: a
// new upload is tracked, a chunk refused breaks its upload, an accepted
// final PUT (or whole POST) commits the blob.
// base is the upload's upstream and repository, "source/repo", and
// session its id ("" for a POST).
func (w *writes) answered(base, session string, u *upload, r *http.Request, resp *http.Response, d digest.Digest) {
	if w == nil || w.cache == nil {
		return
	}
	switch {
	case r.Method == http.MethodPost && resp.StatusCode == http.StatusAccepted && u == nil:
		w.begin(base, resp)
	case u == nil:
	case resp.StatusCode == http.StatusCreated && d != "":
		w.commit(u, d)
	case resp.StatusCode == http.StatusAccepted && r.Method == http.MethodPatch:
	default:
		w.drop(u) // refused: what the upstream holds is not what we do
	}
	if r.Method == http.MethodDelete {
		if u := w.take(base + "/" + session); u != nil {
			w.drop(u)
		}
	}
}

// begin tracks the upload a POST started, by the session id of its
// Location (the last segment of its path).
func (w *writes) begin(base string, resp *http.Response) {
	session := sessionOf(resp)
	if session == "" {
		return
	}
	key := base + "/" + session
	u := &upload{key: key, h: sha256.New()}
	u.timer = time.AfterFunc(uploadIdle, func() {
		w.log.Info("push: upload left alone; its spooled bytes dropped", "upload", key)
		w.drop(u)
	})
	w.mu.Lock()
	w.m[key] = u
	w.mu.Unlock()
}

// commit stores the upload's bytes as blob d if they hash to it.
func (w *writes) commit(u *upload, d digest.Digest) {
	w.forget(u)
	u.mu.Lock()
	f, bad, sum := u.f, u.bad, digest.NewDigest(digest.SHA256, u.h)
	u.f = nil
	u.mu.Unlock()
	if f == nil {
		return
	}
	if bad || sum != d {
		f.Discard()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := w.cache.PushedBlob(ctx, d, f); err != nil {
		w.log.Warn("push: blob not stored in the cache", "digest", d, "err", err)
	}
}

// fail drops an upload whose request got no answer.
func (w *writes) fail(u *upload) {
	if u != nil {
		w.drop(u)
	}
}

// drop forgets an upload and removes its spooled bytes.
func (w *writes) drop(u *upload) {
	w.forget(u)
	u.mu.Lock()
	f := u.f
	u.f, u.bad = nil, true
	u.mu.Unlock()
	if f != nil {
		f.Discard()
	}
}

func (w *writes) forget(u *upload) {
	if u.timer != nil {
		u.timer.Stop()
	}
	if u.key == "" {
		return
	}
	w.mu.Lock()
	if w.m[u.key] == u {
		delete(w.m, u.key)
	}
	w.mu.Unlock()
}

// take removes the upload a DELETE cancelled.
func (w *writes) take(key string) *upload {
	w.mu.Lock()
	defer w.mu.Unlock()
	u := w.m[key]
	delete(w.m, key)
	return u
}

// sessionOf is the session id of an upload the upstream started: its
// Docker-Upload-UUID, else the last segment of its Location.
func sessionOf(resp *http.Response) string {
	if loc := resp.Header.Get("Location"); loc != "" {
		p, _, _ := strings.Cut(loc, "?")
		return path.Base(p)
	}
	return resp.Header.Get("Docker-Upload-UUID")
}

// rangeStart parses the start of a chunk's Content-Range, "N-M" (the
// upload API's form, without "bytes ").
func rangeStart(v string) (int64, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes ")
	start, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}
