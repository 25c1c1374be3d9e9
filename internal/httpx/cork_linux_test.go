package httpx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
)

// corked reads TCP_CORK on the request's connection.
func corked(ctx context.Context) (bool, error) {
	raw, err := ctx.Value(connKey{}).(syscall.Conn).SyscallConn()
	if err != nil {
		return false, err
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK)
	}); err != nil {
		return false, err
	}
	return v != 0, serr
}

func TestCork(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before, err1 := corked(r.Context())
		uncork := Cork(r.Context())
		during, err2 := corked(r.Context())
		uncork()
		after, err3 := corked(r.Context())
		fmt.Fprintf(w, "%v %v %v %v %v %v", before, during, after, err1, err2, err3)
	}))
	srv.Config.ConnContext = ConnContext
	srv.Start()
	defer srv.Close()

	// Twice on one connection: the second response starts uncorked too.
	for i := range 2 {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "false true false <nil> <nil> <nil>"; string(body) != want {
			t.Errorf("request %d: corked before, during, after = %q, want %q", i, body, want)
		}
	}
}

func TestCorkWithoutConnection(t *testing.T) {
	// A server without the hook (or a test recorder): Cork does nothing,
	// and does not panic.
	Cork(httptest.NewRequest(http.MethodGet, "/", nil).Context())()
}
