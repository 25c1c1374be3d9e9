package httpx

import (
	"context"
	"net"
	"net/http"
	"syscall"
)

// Corking (TCP_CORK, as nginx's tcp_nopush) is the one socket tuning of
// Entrepot, and it lives here only: Tune prepares a server, and WriteBody
// sends the answers held in memory (manifests, tag lists, referrers).
// Stored blobs are not corked: measured again, corking them made a lone
// client slower on loopback and changed nothing through a TLS-terminating
// proxy (bench/README.md).

type connKey struct{}

// Tune prepares srv for WriteBody: its ConnContext keeps each
// connection's socket in the context of the connection's requests.
func Tune(srv *http.Server) {
	next := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if next != nil {
			ctx = next(ctx, c)
		}
		if sc, ok := c.(syscall.Conn); ok {
			return context.WithValue(ctx, connKey{}, sc)
		}
		return ctx
	}
}

// smallBody is the largest body that fits net/http's 4 KiB write buffer
// together with a registry answer's headers (about 400 bytes).
const smallBody = 3584

// WriteBody writes body, an answer held in memory. net/http sends the
// headers and the body through a 4 KiB buffer, so a body that does not fit
// it together with the headers (a manifest of many layers, an index) would
// leave in 4 KiB writes and as many segments; corked, and flushed before
// uncorking, it leaves in full segments. Without a socket to cork (no
// Tune, TLS, HTTP/2, where one connection carries many answers) it only
// writes.
func WriteBody(w http.ResponseWriter, r *http.Request, body []byte) error {
	raw := socket(r)
	if raw == nil || len(body) < smallBody || setCork(raw, true) != nil {
		_, err := w.Write(body)
		return err
	}
	defer setCork(raw, false)
	_, err := w.Write(body)
	http.NewResponseController(w).Flush()
	return err
}

// socket returns the connection r arrived on, or nil: without Tune, under
// TLS, or over HTTP/2.
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
