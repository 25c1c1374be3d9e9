package httpx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
)

// corked reads TCP_CORK on the request's connection.
func corked(ctx context.Context) bool {
	raw, err := ctx.Value(connKey{}).(syscall.Conn).SyscallConn()
	if err != nil {
		panic(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK)
	}); err != nil || serr != nil {
		panic(fmt.Sprint(err, serr))
	}
	return v != 0
}

// probe is a one-byte body that notes whether the connection is corked
// while it is being sent.
type probe struct {
	ctx    context.Context
	corked *[]bool
	done   bool
}

func (p *probe) Read(b []byte) (int, error) {
	if p.done {
		return 0, io.EOF
	}
	p.done = true
	*p.corked = append(*p.corked, corked(p.ctx))
	return copy(b, "x"), nil
}

func TestCorkWriter(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var streams atomic.Int64
		var seen []bool
		before := corked(r.Context())
		cw := NewCorkWriter(r.Context(), w, &streams)
		// Alone, then with another stream, then alone again.
		for _, n := range []int64{1, 2, 1} {
			streams.Store(n)
			if _, err := cw.ReadFrom(&probe{ctx: r.Context(), corked: &seen}); err != nil {
				panic(err)
			}
		}
		cw.Close()
		fmt.Fprintf(w, " %v %v %v", before, seen, corked(r.Context()))
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
		if want := "xxx false [true false true] false"; string(body) != want {
			t.Errorf("request %d: body %q, want %q (corked before, during each chunk, after)", i, body, want)
		}
	}
}

func TestCorkWriterWithoutConnection(t *testing.T) {
	// A server without the hook (here a recorder): the writer only writes.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	var streams atomic.Int64
	streams.Store(1)
	cw := NewCorkWriter(req.Context(), rec, &streams)
	if n, err := io.Copy(cw, io.LimitReader(&probeless{}, 5)); n != 5 || err != nil {
		t.Fatalf("copied %d, %v", n, err)
	}
	cw.Close()
	if rec.Body.String() != "yyyyy" {
		t.Fatalf("body %q", rec.Body.String())
	}
}

type probeless struct{}

func (probeless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'y'
	}
	return len(b), nil
}
