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

// Without Tune (here a recorder), WriteBody only writes.
func TestWriteBodyWithoutConnection(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := WriteBody(rec, httptest.NewRequest(http.MethodGet, "/", nil), []byte(strings.Repeat("y", 5000))); err != nil {
		t.Fatal(err)
	}
	if rec.Body.Len() != 5000 {
		t.Fatalf("body %d bytes, want 5000", rec.Body.Len())
	}
}

// tcpInfo is TCP_INFO of the request's connection.
func tcpInfo(ctx context.Context) *unix.TCPInfo {
	raw, err := ctx.Value(connKey{}).(syscall.Conn).SyscallConn()
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
func TestWriteBody(t *testing.T) {
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
		WriteBody(w, r, body)
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
