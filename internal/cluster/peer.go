package cluster

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/opencontainers/go-digest"
)

// PeerPath is where main mounts Handler: the replicas' own API, apart from
// the registry's. Handler expects the full path, prefix included.
const PeerPath = "/_entrepot/peer/"

// Handler serves the other replicas' reads of this replica's fills:
//
//	GET|HEAD /_entrepot/peer/blobs/<digest>   Authorization: Bearer <secret>
//
// It answers 401 to a request without the secret (and says nothing else),
// 400 to an invalid digest, 404 when this replica neither fills nor holds
// the blob, else the blob's bytes as they arrive. It never starts a fill.
//
// Ranges: a request may carry "Range: bytes=N-" (only that form; any other
// is ignored, as HTTP allows). When the blob's size is known, the answer
// is a standard 206 with Content-Range and Content-Length. When it is not
// (a fill whose source did not say), Content-Range cannot express the range
// (RFC 9110 §14.4 needs its last byte), so the answer is a 206 without
// Content-Range or Content-Length, whose body starts at N as the header
// Entrepot-Offset: N says; every 206 carries that header. OpenFill accepts
// a 206 only if one of the two says the body starts where it asked.
func (c *Cluster) Handler(cache *cache.Cache) http.Handler {
	return &peerHandler{cache: cache, auth: sha256.Sum256([]byte("Bearer " + c.secret)), log: c.log}
}

type peerHandler struct {
	cache *cache.Cache
	auth  [32]byte // SHA-256 of the expected Authorization header
	log   *slog.Logger
}

func (h *peerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ref, ok := strings.CutPrefix(r.URL.Path, PeerPath+"blobs/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	d, err := digest.Parse(ref)
	if err != nil {
		http.Error(w, "invalid digest", http.StatusBadRequest)
		return
	}
	h.serveBlob(w, r, d)
}

// authorized compares the Authorization header with the expected one in
// constant time. Both are hashed first, so that not even the secret's
// length shows in the time taken.
func (h *peerHandler) authorized(r *http.Request) bool {
	got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	return subtle.ConstantTimeCompare(got[:], h.auth[:]) == 1
}

// serveBlob sends blob d from the fill under way here or from the store.
func (h *peerHandler) serveBlob(w http.ResponseWriter, r *http.Request, d digest.Digest) {
	b, err := h.cache.PeerBlob(r.Context(), d)
	if errors.Is(err, cache.ErrNoFill) {
		http.Error(w, "no fill of this blob here", http.StatusNotFound)
		return
	}
	if err != nil {
		if r.Context().Err() == nil {
			h.log.Warn("serving a blob to a replica", "digest", d, "err", err)
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer b.Close()
	off := requestedOffset(r.Header.Get("Range"))
	hdr := w.Header()
	if b.Size >= 0 && off > 0 && off >= b.Size {
		hdr.Set("Content-Range", "bytes */"+strconv.FormatInt(b.Size, 10))
		http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Docker-Content-Digest", d.String())
	status := http.StatusOK
	if off > 0 {
		status = http.StatusPartialContent
		hdr.Set(offsetHeader, strconv.FormatInt(off, 10))
		if b.Size >= 0 {
			hdr.Set("Content-Range", "bytes "+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(b.Size-1, 10)+"/"+strconv.FormatInt(b.Size, 10))
		}
	}
	if b.Size >= 0 {
		hdr.Set("Content-Length", strconv.FormatInt(b.Size-off, 10))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if err := b.Copy(r.Context(), w, off, -1); err != nil {
		// The headers are gone: cut the response, so that the peer sees
		// a broken body rather than a short one that looks whole.
		panic(http.ErrAbortHandler)
	}
}

// requestedOffset returns N of "Range: bytes=N-", and 0 for no range or
// any other form.
func requestedOffset(rng string) int64 {
	s, ok := strings.CutPrefix(rng, "bytes=")
	if !ok {
		return 0
	}
	s, ok = strings.CutSuffix(s, "-")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
