// Package registry serves the OCI distribution pull API: it parses each
// request into a route, asks the cache, and writes the answer. Errors come
// back as values and one function renders and logs them.
package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/route"
	"github.com/entrepot/entrepot/internal/upstream"
)

// Server is the registry API handler: every path under /v2/.
type Server struct {
	cache  *cache.Cache
	routes *route.Table
	log    *slog.Logger
	// Redirect tells whether a GET of a stored blob is answered with a
	// redirect to the object store, and for how long the URL lasts; nil:
	// never (the redirect section).
	Redirect func(*http.Request) (expiry time.Duration, ok bool)
	// writes are the blob uploads under way through the cache, stored
	// as they pass (write-through).
	writes *writes
}

// New returns a handler serving ups through c; def names the default
// upstream.
func New(c *cache.Cache, ups []*upstream.Client, def string, log *slog.Logger) *Server {
	return &Server{cache: c, routes: route.NewTable(ups, def), log: log, writes: newWrites(c, log)}
}

// Derive serves the derived images of src under derived/.
func (s *Server) Derive(src cache.Source) { s.routes.Derive(src) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, err := s.routes.Parse(r.URL.Path, r.URL.Query().Get("ns"))
	if err == nil {
		if rt.NS != "" {
			w.Header().Set("OCI-Namespace", rt.NS)
		}
		ctx, out := cache.WithOutcome(r.Context())
		r = r.WithContext(ctx)
		info := describe(r, rt)
		a := &answer{ResponseWriter: w, info: info, out: out, head: r.Method == http.MethodHead}
		if err = s.serve(a, r, rt); err == nil && !a.wrote {
			// A HEAD's handler sets headers only: the status goes out
			// here, so that it carries the result too.
			a.WriteHeader(http.StatusOK)
		}
	}
	if err != nil {
		s.writeError(w, r, rt, err)
	}
}

// describe fills in the request's Info from its route, for the access log
// and metrics.
func describe(r *http.Request, rt route.Route) *httpx.Info {
	info := httpx.InfoOf(r.Context())
	if rt.Source != nil {
		info.Upstream = rt.Source.Name()
	}
	info.Repo = rt.Repo
	info.Ref = rt.Tag
	if rt.Digest != "" {
		info.Ref = rt.Digest.String()
	}
	info.Kind = kinds[rt.Kind]
	return info
}

// kinds names the routes counted by kind.
var kinds = map[route.Kind]string{route.Manifest: "manifest", route.Blob: "blob", route.Tags: "tags", route.Referrers: "referrers"}

// answer is the response writer of a routed request: when the handler
// sends its headers, the cache's result goes into the Info and an RFC 9211
// Cache-Status header.
type answer struct {
	http.ResponseWriter
	info  *httpx.Info
	out   *cache.Outcome
	head  bool // a HEAD stores nothing
	wrote bool
	// forwarded: a push, which the upstream answered (RFC 9211's
	// fwd=method: forwarded for its method).
	forwarded bool
}

func (a *answer) WriteHeader(code int) {
	if !a.wrote {
		a.wrote = true
		if a.forwarded {
			a.info.Result = "forwarded"
			a.Header().Set("Cache-Status", "Entrepot; fwd=method; fwd-status="+strconv.Itoa(code))
		} else if code < 400 && a.info.Kind != "" {
			res := a.out.Result()
			if res == cache.None {
				res = cache.Hit
			}
			a.info.Result = res.String()
			a.Header().Set("Cache-Status", cacheStatus(res, a.head))
		}
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answer) Write(p []byte) (int, error) {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	return a.ResponseWriter.Write(p)
}

// ReadFrom keeps sendfile: net/http's own ReadFrom sends a file with it.
func (a *answer) ReadFrom(r io.Reader) (int64, error) {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	if rf, ok := a.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{a.ResponseWriter}, r)
}

// Flush sends what is buffered: the cache flushes the bytes it writes
// from memory (a range ahead of a fill), which no sendfile sends at once.
func (a *answer) Flush() error {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	err := http.NewResponseController(a.ResponseWriter).Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (a *answer) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// cacheStatus is the Cache-Status value (RFC 9211) of a result; a HEAD
// that missed was forwarded, but nothing was stored.
func cacheStatus(r cache.Result, head bool) string {
	switch r {
	case cache.Miss:
		if head {
			return "Entrepot; fwd=miss"
		}
		return "Entrepot; fwd=miss; stored"
	case cache.Joined:
		return "Entrepot; hit; collapsed"
	case cache.Revalidated:
		return "Entrepot; fwd=stale; fwd-status=200"
	case cache.Stale:
		return "Entrepot; hit; detail=stale"
	}
	return "Entrepot; hit"
}

// errorStatus is the Cache-Status value of an error answer: forwarded, with
// the upstream's status, when the upstream gave the error; denied, and not
// forwarded, when the upstream's policy refused the image.
func errorStatus(err error) string {
	var ue *upstream.Error
	var de *cache.DeniedError
	var tf *cache.TooManyFillsError
	switch {
	case errors.As(err, &tf):
		return "Entrepot; detail=too-many-fills"
	case errors.As(err, &de):
		return "Entrepot; detail=denied"
	case errors.As(err, &ue) && ue.Status > 0:
		return "Entrepot; fwd=miss; fwd-status=" + strconv.Itoa(ue.Status)
	case errors.As(err, &ue):
		return "Entrepot; fwd=miss; detail=no-answer"
	}
	return "Entrepot; detail=error"
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	pushing := (r.Method != http.MethodGet && r.Method != http.MethodHead) || rt.Kind == route.Upload
	if pushing && rt.Upstream != nil && rt.Upstream.Pushes() {
		return s.push(w, r, rt)
	}
	if pushing {
		w.Header().Set("Allow", "GET, HEAD")
		return httpx.Errorf(http.StatusMethodNotAllowed, oci.CodeUnsupported,
			"%s is not supported: this endpoint is a pull-through cache, it serves pulls only (no pushes or deletes)", r.Method)
	}
	switch rt.Kind {
	case route.Base:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
		return nil
	case route.Manifest:
		return s.manifest(w, r, rt)
	case route.Blob:
		return s.blob(w, r, rt)
	case route.Tags:
		return s.tags(w, r, rt)
	case route.Referrers:
		return s.referrers(w, r, rt)
	}
	return httpx.Errorf(http.StatusNotFound, oci.CodeUnsupported, "no such endpoint")
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	m, err := s.cache.Manifest(r.Context(), cache.ManifestRequest{
		Source:  rt.Source,
		Repo:    rt.Repo,
		Tag:     rt.Tag,
		Digest:  rt.Digest,
		Head:    r.Method == http.MethodHead,
		Accepts: httpx.Accepts(r.Header),
	})
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	h.Set("Docker-Content-Digest", m.Digest.String())
	h.Set("Etag", `"`+m.Digest.String()+`"`)
	if r.Method == http.MethodGet {
		httpx.WriteBody(w, r, m.Body)
	}
	return nil
}

// writeError renders err as an OCI error and logs it: the one place that
// does both.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, rt route.Route, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client left; nobody to answer
	}
	e := toHTTP(err, rt.Kind)
	httpx.InfoOf(r.Context()).Error = e.Message
	if rt.Kind != route.Base {
		w.Header().Set("Cache-Status", errorStatus(err))
	}
	level := slog.LevelDebug
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "request failed", "request_id", httpx.RequestIDOf(r.Context()),
		"method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code, "err", err)
	e.Write(w, r)
}

// toHTTP translates any error of the cache, the upstream or the store into
// the OCI error a client gets.
func toHTTP(err error, kind route.Kind) *httpx.Error {
	var he *httpx.Error
	if errors.As(err, &he) {
		return he
	}
	var ue *upstream.Error
	var de *cache.DeniedError
	var tf *cache.TooManyFillsError
	switch {
	case errors.As(err, &tf):
		e := httpx.Errorf(http.StatusTooManyRequests, oci.CodeTooManyRequests, "%s", tf.Error())
		e.RetryAfter = time.Now().Add(tf.RetryAfter)
		return e
	case errors.As(err, &de):
		// The message names the policy: the client's owner learns what to
		// ask the cache's operator for.
		return httpx.Errorf(http.StatusForbidden, oci.CodeDenied, "%s", de.Error())
	case errors.As(err, &ue):
		return upstreamError(ue, kind)
	case errors.Is(err, oci.ErrNotFound):
		return httpx.Errorf(http.StatusNotFound, notFoundCode(kind), "%v", err)
	case errors.Is(err, oci.ErrDigestMismatch), errors.Is(err, oci.ErrInvalid):
		return httpx.Errorf(http.StatusBadGateway, oci.CodeUnavailable, "%v", err)
	case errors.Is(err, oci.ErrTooLarge):
		return httpx.Errorf(http.StatusBadGateway, oci.CodeSizeInvalid, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return httpx.Errorf(http.StatusGatewayTimeout, oci.CodeUnavailable, "timed out")
	case errors.Is(err, cache.ErrClosed):
		return httpx.Errorf(http.StatusServiceUnavailable, oci.CodeUnavailable, "%v", err)
	}
	// The detail is in the log, under the request's id.
	return httpx.Errorf(http.StatusInternalServerError, oci.CodeUnknown, "internal error")
}

func upstreamError(ue *upstream.Error, kind route.Kind) *httpx.Error {
	msg := ue.Public()
	switch {
	case ue.Status == http.StatusNotFound:
		return httpx.Errorf(http.StatusNotFound, notFoundCode(kind), "%s", msg)
	case ue.Status == http.StatusTooManyRequests:
		e := httpx.Errorf(http.StatusTooManyRequests, oci.CodeTooManyRequests, "%s", msg)
		e.RetryAfter = ue.RetryAfter
		return e
	case ue.Status == http.StatusUnauthorized || ue.Status == http.StatusForbidden:
		return httpx.Errorf(http.StatusForbidden, oci.CodeDenied, "%s", msg)
	case ue.Status == 0 && isTimeout(ue.Err):
		return httpx.Errorf(http.StatusGatewayTimeout, oci.CodeUnavailable, "%s", msg)
	}
	return httpx.Errorf(http.StatusBadGateway, oci.CodeUnavailable, "%s", msg)
}

// notFoundCode is the error code of a 404 for a route of kind.
func notFoundCode(kind route.Kind) string {
	switch kind {
	case route.Blob:
		return oci.CodeBlobUnknown
	case route.Tags:
		return oci.CodeNameUnknown
	}
	return oci.CodeManifestUnknown
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, upstream.ErrStalled) ||
		(errors.As(err, &ne) && ne.Timeout())
}
