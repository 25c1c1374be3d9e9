package httpx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// corked reads TCP_CORK on the request's connection.
func corked(ctx context.Context) bool {
	raw, err := ctx.Value(connKey{}).(*conn).sc.SyscallConn()
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

// A large whole body is corked while it is the only large body in flight.
func TestSendBodyLarge(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bodies := r.Context().Value(connKey{}).(*conn).bodies
		var seen []bool
		before := corked(r.Context())
		err := SendBody(w, r, LargeBody, true, func(dst io.Writer) error {
			if _, ok := dst.(io.ReaderFrom); !ok {
				t.Error("the writer SendBody gives is no io.ReaderFrom: sendfile would be lost")
			}
			// Alone, then with another body, then alone again.
			for _, n := range []int64{1, 2, 1} {
				bodies.Store(n)
				if _, err := dst.(io.ReaderFrom).ReadFrom(&probe{ctx: r.Context(), corked: &seen}); err != nil {
					return err
				}
			}
			bodies.Store(1)
			return nil
		})
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(w, " %v %v %v", before, seen, corked(r.Context()))
	}))
	Tune(srv.Config)
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

func TestSendBodyWithoutConnection(t *testing.T) {
	// A server without Tune (here a recorder): SendBody only writes.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	err := SendBody(rec, req, LargeBody, true, func(dst io.Writer) error {
		if dst != io.Writer(rec) {
			t.Errorf("SendBody wrapped the writer of a connection it cannot cork")
		}
		n, err := io.Copy(dst, io.LimitReader(&probeless{}, 5))
		if n != 5 {
			t.Errorf("copied %d", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
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

// tcpInfo is TCP_INFO of the request's connection.
func tcpInfo(ctx context.Context) *unix.TCPInfo {
	raw, err := ctx.Value(connKey{}).(*conn).sc.SyscallConn()
	if err != nil {
		panic(err)
	}
	var info *unix.TCPInfo
	if err := raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || info == nil {
		panic(fmt.Sprint(err))
	}
	return info
}

// A body in memory that does not fit net/http's buffer with its headers
// leaves in one segment.
func TestSendBodyInMemory(t *testing.T) {
	type state struct {
		corked        bool
		segments, mss uint32
	}
	after := make(chan state, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := []byte(strings.Repeat("m", n))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		before := tcpInfo(r.Context()).Data_segs_out
		SendBody(w, r, int64(n), true, func(dst io.Writer) error { _, err := dst.Write(body); return err })
		info := tcpInfo(r.Context())
		after <- state{corked(r.Context()), info.Data_segs_out - before, info.Snd_mss}
	}))
	Tune(srv.Config)
	srv.Start()
	defer srv.Close()

	// Below, at and above the size that is corked; above net/http's
	// buffer; several times its size.
	for _, n := range []int{0, 10, smallBody - 1, smallBody, 4096, 6500, 100_000} {
		resp, err := srv.Client().Get(fmt.Sprintf("%s/?n=%d", srv.URL, n))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != strings.Repeat("m", n) {
			t.Errorf("n=%d: got %d bytes, %v", n, len(body), err)
		}
		st := <-after
		if st.corked {
			t.Errorf("n=%d: the connection is left corked", n)
		}
		if st.segments == 0 && n > 0 {
			t.Skip("this kernel does not count data segments in TCP_INFO")
		}
		// Headers and body in one segment (on loopback the MSS is about
		// 64 KiB), where net/http alone writes 4 KiB at a time.
		if n >= smallBody && n+1024 < int(st.mss) && st.segments != 1 {
			t.Errorf("n=%d: sent in %d segments, want 1", n, st.segments)
		}
	}
}
