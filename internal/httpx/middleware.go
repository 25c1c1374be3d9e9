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

// Pass is the middleware that adds nothing: the place of a layer not yet
// configured.
func Pass(h http.Handler) http.Handler { return h }

type requestIDKey struct{}

// RequestID gives every request an id: the client's X-Request-Id when it
// is a short, plain token, else a new random one. The answer carries it in
// X-Request-Id, and log lines about the request name it.
func RequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !plainToken(id) {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// RequestIDOf returns the id RequestID gave the request of ctx, or "".
func RequestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

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

// AccessLog logs every request, at debug level, with its status, the body
// bytes sent and its duration.
func AccessLog(log *slog.Logger) Middleware {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !log.Enabled(r.Context(), slog.LevelDebug) {
				h.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			rw := NewResponseWriter(w)
			defer func() {
				log.LogAttrs(r.Context(), slog.LevelDebug, "request",
					slog.String("request_id", RequestIDOf(r.Context())),
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int("status", rw.Status()), slog.Int64("bytes", rw.Written()),
					slog.Duration("duration", time.Since(start)))
			}()
			h.ServeHTTP(rw, r)
		})
	}
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
