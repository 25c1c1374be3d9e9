// Package admin is the admin API: JSON over HTTP, on a listener of its own,
// for what operators do to the cache's holdings: list them, warm images up,
// freeze and unfreeze tags, purge. The command line (entrepot ls, warm,
// freeze, unfreeze, purge) is its client; API carries the types both
// sides share.
//
//	GET  /api/v1/images[?repository=R]   the cached repositories ([]cache.Repository)
//	POST /api/v1/warm      {"images":[{"image":I,"platforms":[P]}]}  progress, one JSON line per change
//	POST /api/v1/freeze    {"image":"REPO:TAG"}          a Result
//	POST /api/v1/unfreeze  {"image":"REPO:TAG"}          a Result
//	POST /api/v1/purge     {"image":"REPO[:TAG|@DIGEST]"} a Result
//
// With a token configured, every request needs "Authorization: Bearer
// TOKEN"; one without it is refused with 401 and changes nothing.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// Image is an image to warm: a reference with its registry written out,
// whose tag may be a pattern (1.27.*), and the platforms wanted of an
// index (none: all).
type Image struct {
	Image     string   `json:"image"`
	Platforms []string `json:"platforms,omitempty"`
}

// WarmRequest is the body of POST /api/v1/warm.
type WarmRequest struct {
	Images []Image `json:"images"`
}

// ImageRequest is the body of freeze, unfreeze and purge.
type ImageRequest struct {
	Image string `json:"image"`
}

// Result answers freeze, unfreeze and purge.
type Result struct {
	Image   string        `json:"image"`
	Digest  digest.Digest `json:"digest,omitempty"`
	Removed cache.Removed `json:"removed,omitzero"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

// Server serves the admin API over a cache.
type Server struct {
	cache   *cache.Cache
	sources map[string]cache.Source
	names   []string // the sources' names, in order, for errors
	token   string
	log     *slog.Logger
	mux     *http.ServeMux
	// admins accepts requests of users granted admin (AllowAdmins).
	admins func(*http.Request) bool
	// public serves what needs no token: the dashboard's page and assets,
	// which hold no data (the page asks the API for it, with the token).
	public *http.ServeMux
}

// New returns the admin API over c and its sources, requiring token
// unless it is empty.
func New(c *cache.Cache, sources []cache.Source, token string, log *slog.Logger) *Server {
	s := &Server{cache: c, sources: map[string]cache.Source{}, token: token, log: log, mux: http.NewServeMux(), public: http.NewServeMux()}
	for _, src := range sources {
		s.sources[src.Name()] = src
		s.names = append(s.names, src.Name())
	}
	s.mux.HandleFunc("GET /api/v1/images", s.list)
	s.mux.HandleFunc("POST /api/v1/warm", s.warm)
	s.mux.HandleFunc("POST /api/v1/freeze", s.freeze)
	s.mux.HandleFunc("POST /api/v1/unfreeze", s.unfreeze)
	s.mux.HandleFunc("POST /api/v1/purge", s.purge)
	return s
}

// Handle adds a handler to the admin listener, behind its token (the
// metrics and the dashboard live here too).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandlePublic adds a handler that needs no token: for static content
// that holds no data, such as the dashboard's page.
func (s *Server) HandlePublic(pattern string, h http.Handler) { s.public.Handle(pattern, h) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, pattern := s.public.Handler(r); pattern != "" {
		h.ServeHTTP(w, r)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="entrepot-admin"`)
		writeJSON(w, http.StatusUnauthorized, Error{"a valid admin token is required (Authorization: Bearer TOKEN)"})
		return
	}
	// A web page the operator's browser shows can send requests to a
	// loopback address (and, by DNS rebinding, under another name): it
	// cannot send JSON without a CORS preflight, which is never answered,
	// nor set a loopback Host under another name.
	if s.token == "" && !loopbackHost(r.Host) {
		writeJSON(w, http.StatusForbidden, Error{fmt.Sprintf("Host %q is not a loopback address; without a token the admin API answers only requests to one", r.Host)})
		return
	}
	if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
		writeJSON(w, http.StatusUnsupportedMediaType, Error{"the request body must be JSON (Content-Type: application/json)"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// loopbackHost tells whether a Host header names this machine: localhost
// or a loopback address, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// authorized checks the bearer token, in constant time.
func (s *Server) authorized(r *http.Request) bool {
	if s.token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1 {
		return true
	}
	return s.admins != nil && s.admins(r)
}

// AllowAdmins lets in, besides the token, the requests admins accepts: the
// users the access rules grant admin.
func (s *Server) AllowAdmins(admins func(*http.Request) bool) { s.admins = admins }

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	repos, err := s.cache.List(r.Context(), r.URL.Query().Get("repository"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, repos)
}

func (s *Server) freeze(w http.ResponseWriter, r *http.Request) {
	s.tagOp(w, r, func(ctx context.Context, src cache.Source, repo, tag string) (digest.Digest, error) {
		return s.cache.Freeze(ctx, src, repo, tag, nil)
	})
}

func (s *Server) unfreeze(w http.ResponseWriter, r *http.Request) {
	s.tagOp(w, r, s.cache.Unfreeze)
}

// tagOp runs freeze or unfreeze on the tag a request names.
func (s *Server) tagOp(w http.ResponseWriter, r *http.Request, op func(context.Context, cache.Source, string, string) (digest.Digest, error)) {
	ref, src, err := s.imageOf(r, false)
	if err == nil && (ref.Tag == "" || ref.Digest != "") {
		err = badRequest("%s: name a tag, e.g. %s:1.27", ref, ref.Name())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := op(r.Context(), src, ref.Repository, ref.Tag)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Result{Image: ref.String(), Digest: d})
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	ref, _, err := s.imageOf(r, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	removed, err := s.cache.Purge(r.Context(), ref.Registry, ref.Repository, ref.Tag, ref.Digest)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Result{Image: ref.String(), Removed: removed})
}

// warm streams the progress of a warm-up, one JSON line (a
// cache.WarmProgress) per change, at most every progressEvery per image
// but for its last. The answer is 200 once the images are valid; each
// image's failure is in its last line.
func (s *Server) warm(w http.ResponseWriter, r *http.Request) {
	var req WarmRequest
	if err := readJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	reqs, err := s.WarmRequests(req.Images)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var mu sync.Mutex // orders the lines
	enc := json.NewEncoder(w)
	last := map[string]time.Time{}
	s.Warm(r.Context(), reqs, func(p cache.WarmProgress) {
		mu.Lock()
		defer mu.Unlock()
		if !p.Done && time.Since(last[p.Image]) < progressEvery {
			return
		}
		last[p.Image] = time.Now()
		enc.Encode(p)
		rc.Flush()
	})
}

// progressEvery is how often the progress of an image is sent.
const progressEvery = 100 * time.Millisecond

// Warm warms every image of reqs, one after the other, and calls progress
// as they advance; it returns how many failed.
func (s *Server) Warm(ctx context.Context, reqs []cache.WarmRequest, progress func(cache.WarmProgress)) (failed int) {
	for _, q := range reqs {
		if err := s.cache.Warm(ctx, q, progress); err != nil {
			failed++
			if ctx.Err() != nil {
				return failed
			}
		}
	}
	return failed
}

// WarmRequests validates images and returns what the cache is asked.
func (s *Server) WarmRequests(images []Image) ([]cache.WarmRequest, error) {
	return s.warmRequests(images)
}

func (s *Server) warmRequests(images []Image) ([]cache.WarmRequest, error) {
	if len(images) == 0 {
		return nil, badRequest("no images to warm")
	}
	var reqs []cache.WarmRequest
	for _, img := range images {
		ref, src, err := s.parse(img.Image, true)
		if err != nil {
			return nil, err
		}
		tag := ref.Tag
		if tag == "" && ref.Digest == "" {
			tag = "latest"
		}
		reqs = append(reqs, cache.WarmRequest{Source: src, Repo: ref.Repository, Tag: tag, Digest: ref.Digest, Platforms: img.Platforms})
	}
	return reqs, nil
}

// imageOf reads the image a request body names.
func (s *Server) imageOf(r *http.Request, pattern bool) (oci.Reference, cache.Source, error) {
	var req ImageRequest
	if err := readJSON(r, &req); err != nil {
		return oci.Reference{}, nil, err
	}
	return s.parse(req.Image, pattern)
}

// parse reads an image reference of a configured upstream. With pattern,
// the tag may hold * (1.27.*).
func (s *Server) parse(image string, pattern bool) (oci.Reference, cache.Source, error) {
	ref, err := ParseImage(image, pattern)
	if err != nil {
		return ref, nil, badRequest("%v", err)
	}
	src := s.sources[ref.Registry]
	host, _, _ := strings.Cut(image, "/")
	if first, rest, nested := strings.Cut(ref.Repository, "/"); !oci.IsHost(host) && nested && s.sources[first] != nil {
		// A source named in the path, not a registry host: derived/vault
		// (which a reference without a host reads as Docker Hub's).
		src, ref.Registry, ref.Repository = s.sources[first], first, rest
	}
	if src == nil {
		return ref, nil, &httpError{http.StatusNotFound, fmt.Sprintf("%s: no upstream %q is configured (configured: %s)",
			image, ref.Registry, strings.Join(s.names, ", "))}
	}
	return ref, src, nil
}

// ParseImage parses an image reference as oci.ParseReference does; with
// pattern, its tag may hold * (1.27.*).
func ParseImage(image string, pattern bool) (oci.Reference, error) {
	if image == "" {
		return oci.Reference{}, errors.New("no image given")
	}
	if !pattern || !strings.Contains(image, "*") {
		return oci.ParseReference(image)
	}
	colon := strings.LastIndexByte(image, ':')
	if colon < 0 || strings.Contains(image[colon:], "/") || strings.Contains(image[:colon], "*") {
		return oci.Reference{}, fmt.Errorf("%q: only a tag may be a pattern, e.g. docker.io/library/nginx:1.27.*", image)
	}
	tag := image[colon+1:]
	ref, err := oci.ParseReference(image[:colon+1] + strings.ReplaceAll(tag, "*", "x"))
	if err != nil {
		return ref, err
	}
	ref.Tag = tag
	return ref, nil
}

// maxBody bounds a request body.
const maxBody = 1 << 20

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	return nil
}

// httpError is an error with its status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// fail writes err with its status: what the request got wrong (400), what
// the upstream's policy refuses (403), what is not there (404), what the
// upstream failed (502), or our own failure (500, logged).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	switch {
	case errors.As(err, &he):
		status = he.status
	case errors.Is(err, oci.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, cache.ErrListed):
		status = http.StatusConflict
	case isDenied(err):
		status = http.StatusForbidden // the upstream's policy refuses the image
	case errors.Is(err, context.Canceled):
		return
	case errors.Is(err, cache.ErrClosed):
		status = http.StatusServiceUnavailable
	case errors.Is(err, cache.ErrSourceFailing), errors.Is(err, oci.ErrDigestMismatch), errors.Is(err, oci.ErrInvalid),
		errors.Is(err, oci.ErrTooLarge), errors.Is(err, context.DeadlineExceeded), isPublic(err):
		status = http.StatusBadGateway // the upstream failed, not us
	}
	msg := err.Error()
	if p, ok := errors.AsType[publicError](err); ok {
		msg = p.Public()
	}
	if status >= 500 {
		s.log.Warn("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, Error{msg})
}

// publicError is an upstream's failure, which can say itself in words
// without the upstream's addresses.
type publicError interface {
	error
	Public() string
}

func isDenied(err error) bool {
	_, ok := errors.AsType[*cache.DeniedError](err)
	return ok
}

func isPublic(err error) bool {
	_, ok := errors.AsType[publicError](err)
	return ok
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
