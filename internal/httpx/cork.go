package httpx

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
)

type connKey struct{}

// ConnContext is an http.Server ConnContext hook: it keeps the connection's
// socket in every request's context, for CorkWriter and WriteBody.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(syscall.Conn); ok {
		return context.WithValue(ctx, connKey{}, sc)
	}
	return ctx
}

// socket returns the socket r arrived on, or nil: without the ConnContext
// hook, under TLS, or over HTTP/2, where one connection carries many
// answers and none may cork it for the others.
func socket(r *http.Request) syscall.RawConn {
	sc, ok := r.Context().Value(connKey{}).(syscall.Conn)
	if !ok || r.ProtoMajor != 1 {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// LargeBody is the size from which a body is worth corking with
// CorkWriter: below it, the body leaves in a segment or two anyway.
const LargeBody = 64 << 10

// CorkWriter sends a large body that is ready in full (a stored file,
// written in chunks through ReadFrom, that is with sendfile) with its
// connection corked (TCP_CORK, as nginx's tcp_nopush) while no other blob
// body is in flight, and uncorked otherwise: Streams counts the blob bodies
// in flight, stored or arriving, and each chunk looks again. Corked, the
// headers and the file leave in full segments only. On loopback that serves
// a lone client about a fifth faster, and 16 concurrent clients about a
// sixth slower, for nginx as for Entrepot (bench/README.md).
//
// Without a socket to cork (see socket) it only writes. Close uncorks,
// which sends what is held.
type CorkWriter struct {
	http.ResponseWriter
	Streams *atomic.Int64

	raw    syscall.RawConn
	corked bool
}

// NewCorkWriter returns a CorkWriter for w, the answer to r.
func NewCorkWriter(r *http.Request, w http.ResponseWriter, streams *atomic.Int64) *CorkWriter {
	return &CorkWriter{ResponseWriter: w, Streams: streams, raw: socket(r)}
}

// ReadFrom sends r, corked or not as the number of streams says.
func (w *CorkWriter) ReadFrom(r io.Reader) (int64, error) {
	w.cork(w.Streams.Load() <= 1)
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *CorkWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Close uncorks the connection.
func (w *CorkWriter) Close() { w.cork(false) }

func (w *CorkWriter) cork(on bool) {
	if w.raw == nil || on == w.corked {
		return
	}
	if setCork(w.raw, on) == nil {
		w.corked = on
	}
}

// WriteBody writes body, an answer held in memory, as one TCP segment where
// it can. net/http sends the headers and the body through a 4 KiB buffer, so
// a body that does not fit it together with the headers (a manifest of many
// layers, an index) would leave in two writes and two segments; corked, and
// flushed before uncorking, it leaves in one.
func WriteBody(r *http.Request, w http.ResponseWriter, body []byte) {
	raw := socket(r)
	if raw == nil || len(body) < smallBody || setCork(raw, true) != nil {
		w.Write(body)
		return
	}
	defer setCork(raw, false)
	w.Write(body)
	http.NewResponseController(w).Flush()
}

// smallBody is the largest body that fits net/http's 4 KiB write buffer
// together with a registry answer's headers (about 400 bytes).
const smallBody = 3584
