package httpx

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
)

// Corking (TCP_CORK, as nginx's tcp_nopush) is the one socket tuning of
// Entrepot, and it lives here only: Tune prepares a server, and SendBody
// sends every answer body the registry handlers write. Its measured gain
// is in bench/README.md.

type connKey struct{}

// conn is what SendBody knows of a request's connection.
type conn struct {
	sc     syscall.Conn
	bodies *atomic.Int64 // large bodies in flight on the server
}

// Tune prepares srv for SendBody: its ConnContext keeps each connection's
// socket, and the server's count of large bodies in flight, in the
// context of the connection's requests.
func Tune(srv *http.Server) {
	bodies := new(atomic.Int64)
	next := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if next != nil {
			ctx = next(ctx, c)
		}
		if sc, ok := c.(syscall.Conn); ok {
			return context.WithValue(ctx, connKey{}, &conn{sc: sc, bodies: bodies})
		}
		return ctx
	}
}

// LargeBody is the size from which a body counts as large: it is corked
// only while it is the only large body in flight, since corking serves a
// lone client faster and many clients slower, for nginx as for Entrepot.
const LargeBody = 64 << 10

// smallBody is the largest body that fits net/http's 4 KiB write buffer
// together with a registry answer's headers (about 400 bytes).
const smallBody = 3584

// SendBody sends an answer's body of n bytes (-1: unknown), which write
// writes to the writer it is given. whole tells that the body is ready in
// full (in memory, or a stored file), rather than arriving as it is sent.
//
// A whole body that does not fit net/http's buffer with its headers (a
// manifest of many layers, an index) leaves in full segments, corked and
// flushed, instead of net/http's 4 KiB writes. A large whole body (a
// stored blob, sent with sendfile through ReadFrom) is corked while no
// other large body is in flight on the server. Without a socket to cork
// (no Tune, TLS, HTTP/2, where one connection carries many answers),
// SendBody only writes.
func SendBody(w http.ResponseWriter, r *http.Request, n int64, whole bool, write func(io.Writer) error) error {
	c, raw := socket(r)
	if c == nil {
		return write(w)
	}
	if n < 0 || n >= LargeBody {
		c.bodies.Add(1)
		defer c.bodies.Add(-1)
	}
	switch {
	case whole && n >= LargeBody:
		cw := &corkWriter{ResponseWriter: w, raw: raw, bodies: c.bodies}
		defer cw.uncork()
		return write(cw)
	case whole && n >= smallBody:
		if setCork(raw, true) != nil {
			return write(w)
		}
		defer setCork(raw, false)
		err := write(w)
		http.NewResponseController(w).Flush()
		return err
	}
	return write(w)
}

// socket returns the connection r arrived on, or nil: without Tune, under
// TLS, or over HTTP/2.
func socket(r *http.Request) (*conn, syscall.RawConn) {
	c, ok := r.Context().Value(connKey{}).(*conn)
	if !ok || r.ProtoMajor != 1 {
		return nil, nil
	}
	raw, err := c.sc.SyscallConn()
	if err != nil {
		return nil, nil
	}
	return c, raw
}

// corkWriter corks its connection for each write while its body is the
// only large body in flight, and uncorks it otherwise: each chunk looks
// again.
type corkWriter struct {
	http.ResponseWriter
	raw    syscall.RawConn
	bodies *atomic.Int64
	corked bool
}

// ReadFrom sends r (with sendfile, for a file), corked or not.
func (w *corkWriter) ReadFrom(r io.Reader) (int64, error) {
	w.cork(w.bodies.Load() <= 1)
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

func (w *corkWriter) Write(p []byte) (int, error) {
	w.cork(w.bodies.Load() <= 1)
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *corkWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// uncork sends what net/http holds, then uncorks, which sends what the
// kernel holds.
func (w *corkWriter) uncork() {
	if w.corked {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
	w.cork(false)
}

func (w *corkWriter) cork(on bool) {
	if on == w.corked {
		return
	}
	if setCork(w.raw, on) == nil {
		w.corked = on
	}
}
