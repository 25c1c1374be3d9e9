package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Middleware wraps a handler: the request pipeline in front of the
// registry handlers is a chain of them (request id, logging, and where
// metrics and authentication attach).
type Middleware func(http.Handler) http.Handler

// Chain returns h behind mws, the first outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

type infoKey struct{}

// Info is what the pipeline learns of one request, for the middlewares
// that report it: its id (RequestID), and what the handler found out (the
// upstream, repository and reference it routed to, the kind of request, and
// what the cache did).
type Info struct {
	ID                  string
	Upstream, Repo, Ref string
	// Kind is manifest, blob, tags or referrers; empty for other paths.
	Kind string
	// Result is hit, miss, joined, revalidated or stale, as the handler
	// set it; ResultOf tells the result a request ended with.
	Result string
	// Error is the message of the error answer sent, if any: what the
	// client was told, never more.
	Error string
	// Client is the authenticated client's name ("" for anonymous), and
	// Rule the access rule that allowed or refused the request, when
	// authentication is on.
	Client, Rule string
}

// ResultOf is the result a request ended with: denied for a 401 or 403,
// error for any other failure, else what the handler set.
func (i *Info) ResultOf(status int) string {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "denied"
	case status >= 400:
		return "error"
	case i.Result == "":
		return "hit"
	}
	return i.Result
}

// RequestID gives every request an Info and an id: the client's
// X-Request-Id when it is a short, plain token, else a new random one. The
// answer carries it in X-Request-Id, and log lines about the request name
// it.
func RequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !plainToken(id) {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), infoKey{}, &Info{ID: id})))
	})
}

// InfoOf returns the Info of the request of ctx; one that goes nowhere when
// RequestID did not run.
func InfoOf(ctx context.Context) *Info {
	if i, ok := ctx.Value(infoKey{}).(*Info); ok {
		return i
	}
	return new(Info)
}

// RequestIDOf returns the id RequestID gave the request of ctx, or "".
func RequestIDOf(ctx context.Context) string { return InfoOf(ctx).ID }

// plainToken accepts an id of up to 64 letters, digits, '-', '_' and '.'.
func plainToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// AccessLog logs one line per request, at info level: the client's
// address, the method and path, what the handler routed it to (upstream,
// repository, reference), its result, status, body bytes sent, duration
// and id. Never a header or a query: no credential or token reaches the
// log from here (the path's parts are validated names, tags and digests).
func AccessLog(log *slog.Logger) Middleware {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !log.Enabled(r.Context(), slog.LevelInfo) {
				h.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			rw := Recorder(w)
			defer func() {
				info := InfoOf(r.Context())
				attrs := []slog.Attr{
					slog.String("client", r.RemoteAddr), slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.String("upstream", info.Upstream), slog.String("repo", info.Repo), slog.String("ref", info.Ref),
					slog.String("result", info.ResultOf(rw.Status())), slog.Int("status", rw.Status()),
					slog.Int64("bytes", rw.Written()), slog.Duration("duration", time.Since(start)),
					slog.String("request_id", info.ID)}
				if info.Client != "" {
					attrs = append(attrs, slog.String("user", info.Client))
				}
				if info.Rule != "" {
					attrs = append(attrs, slog.String("rule", info.Rule))
				}
				log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			}()
			h.ServeHTTP(rw, r)
		})
	}
}

// Recorder returns w as a *ResponseWriter: w itself when a middleware
// outside recorded it already, so that the layers share one.
func Recorder(w http.ResponseWriter) *ResponseWriter {
	if rw, ok := w.(*ResponseWriter); ok {
		return rw
	}
	return NewResponseWriter(w)
}

// ResponseWriter records the status and body size of an answer, for the
// middlewares that report them. It keeps io.ReaderFrom, so that a stored
// blob still leaves with sendfile, and Unwrap, so that
// http.ResponseController reaches the connection's writer.
type ResponseWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

// NewResponseWriter returns w, recorded.
func NewResponseWriter(w http.ResponseWriter) *ResponseWriter {
	return &ResponseWriter{ResponseWriter: w}
}

// Status is the answer's status (200 when the handler set none).
func (w *ResponseWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Written is the number of body bytes sent.
func (w *ResponseWriter) Written() int64 { return w.written }

func (w *ResponseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *ResponseWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// ReadFrom passes r to the writer underneath, whose ReadFrom sends files
// with sendfile.
func (w *ResponseWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.written += n
	return n, err
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (w *ResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
