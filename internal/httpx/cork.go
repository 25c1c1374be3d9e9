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
// socket in every request's context, for CorkWriter.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(syscall.Conn); ok {
		return context.WithValue(ctx, connKey{}, sc)
	}
	return ctx
}

// CorkWriter sends a body that is ready in full (a stored file, written in
// chunks through ReadFrom, that is with sendfile) with its connection corked
// (TCP_CORK, as nginx's tcp_nopush) while it is the only large body in
// flight, and uncorked otherwise: Streams counts the bodies in flight, and
// each chunk looks again. Corked, the headers and the file leave in full
// segments only. On loopback that serves a lone client about a fifth
// faster, and 16 concurrent clients about a sixth slower, for nginx as for
// Entrepot (bench/README.md).
//
// Without the socket (no ConnContext hook, TLS, another OS) it only writes.
// Close uncorks, which sends what is held.
type CorkWriter struct {
	http.ResponseWriter
	Streams *atomic.Int64

	raw    syscall.RawConn
	corked bool
}

// NewCorkWriter returns a CorkWriter for w, answering the request of ctx.
func NewCorkWriter(ctx context.Context, w http.ResponseWriter, streams *atomic.Int64) *CorkWriter {
	cw := &CorkWriter{ResponseWriter: w, Streams: streams}
	if sc, ok := ctx.Value(connKey{}).(syscall.Conn); ok {
		cw.raw, _ = sc.SyscallConn()
	}
	return cw
}

// ReadFrom sends r, corked or not as the number of streams says.
func (w *CorkWriter) ReadFrom(r io.Reader) (int64, error) {
	w.cork(w.Streams.Load() <= 1)
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

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

// WriteBody writes body, a small answer held in memory, as one TCP segment
// where it can. net/http sends the headers and the body through a 4 KiB
// buffer, so a body of more than a few KiB (a manifest of many layers, an
// index) would leave in two writes and two segments; corked, and flushed
// before uncorking, it leaves in one.
func WriteBody(ctx context.Context, w http.ResponseWriter, body []byte) {
	sc, ok := ctx.Value(connKey{}).(syscall.Conn)
	if !ok || len(body) < smallBody {
		w.Write(body)
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil || setCork(raw, true) != nil {
		w.Write(body)
		return
	}
	w.Write(body)
	http.NewResponseController(w).Flush()
	setCork(raw, false)
}

// smallBody is the body size below which headers and body fit net/http's
// 4 KiB write buffer together, less room for the headers.
const smallBody = 2 << 10
