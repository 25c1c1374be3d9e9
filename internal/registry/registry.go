// Package registry serves the OCI distribution pull API: it parses each
// request into a route, asks the cache, and writes the answer. Errors come
// back as values and one function renders and logs them.
package registry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"

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
}

// New returns a handler serving ups through c; def names the default
// upstream.
func New(c *cache.Cache, ups []*upstream.Client, def string, log *slog.Logger) *Server {
	return &Server{cache: c, routes: route.NewTable(ups, def), log: log}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, err := s.routes.Parse(r.URL.Path, r.URL.Query().Get("ns"))
	if err == nil {
		if rt.NS != "" {
			w.Header().Set("OCI-Namespace", rt.NS)
		}
		err = s.serve(w, r, rt)
	}
	if err != nil {
		s.writeError(w, r, rt, err)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || rt.Kind == route.Upload {
		w.Header().Set("Allow", "GET, HEAD")
		return httpx.Errorf(http.StatusMethodNotAllowed, oci.CodeUnsupported,
			"%s is not supported: this endpoint is a pull-through cache, it serves pulls only (no pushes or deletes)", r.Method)
	}
	up := rt.Upstream
	switch rt.Kind {
	case route.Base:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
		return nil
	case route.Manifest:
		return s.manifest(w, r, rt, up)
	case route.Blob:
		return s.blob(w, r, rt, up)
	case route.Tags:
		return s.tags(w, r, rt, up)
	case route.Referrers:
		return s.referrers(w, r, rt, up)
	}
	return httpx.Errorf(http.StatusNotFound, oci.CodeUnsupported, "no such endpoint")
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request, rt route.Route, up *upstream.Client) error {
	m, err := s.cache.Manifest(r.Context(), cache.ManifestRequest{
		Source:  up,
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
	switch {
	case errors.As(err, &ue):
		return upstreamError(ue, kind)
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
		code := oci.CodeManifestUnknown
		switch kind {
		case route.Blob:
			code = oci.CodeBlobUnknown
		case route.Tags:
			code = oci.CodeNameUnknown
		}
		return httpx.Errorf(http.StatusNotFound, code, "%s", msg)
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

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, upstream.ErrStalled) ||
		(errors.As(err, &ne) && ne.Timeout())
}
