package httpx

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The pipeline keeps sendfile: the writer a handler gets behind every
// middleware implements io.ReaderFrom, and unwrapping it reaches net/http's
// own writer, whose ReadFrom sends an *os.File with sendfile. The file
// arrives whole, and the recorder counts it.
func TestPipelineKeepsReaderFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	content := strings.Repeat("b", 1<<20)
	os.WriteFile(path, []byte(content), 0o644)
	var reached string
	var recorded *ResponseWriter
	final := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Errorf("%T is no io.ReaderFrom", w)
		}
		var inner http.ResponseWriter = w
		for {
			u, ok := inner.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				break
			}
			inner = u.Unwrap()
		}
		reached = fmt.Sprintf("%T", inner)
		if _, err := io.Copy(w, f); err != nil {
			t.Error(err)
		}
	})
	record := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			recorded = NewResponseWriter(w)
			h.ServeHTTP(recorded, r)
		})
	}
	srv := httptest.NewUnstartedServer(Chain(final, RequestID, AccessLog(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))), record))
	Tune(srv.Config)
	srv.Start()
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != content {
		t.Fatalf("got %d bytes, want %d", len(body), len(content))
	}
	if reached != "*http.response" {
		t.Errorf("unwrapping the handler's writer reaches %s, want net/http's *http.response", reached)
	}
	if recorded.Written() != int64(len(content)) || recorded.Status() != http.StatusOK {
		t.Errorf("recorded %d bytes, status %d", recorded.Written(), recorded.Status())
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the answer")
	}
}

func TestRequestID(t *testing.T) {
	h := Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, RequestIDOf(r.Context()))
	}), RequestID)
	for _, tc := range []struct {
		sent string
		kept bool
	}{
		{"abc-123", true},
		{"", false},
		{"has space", false},
		{strings.Repeat("x", 65), false},
		{"bad\nline", false},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		if tc.sent != "" {
			req.Header["X-Request-Id"] = []string{tc.sent}
		}
		h.ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-Id")
		if id != rec.Body.String() || id == "" {
			t.Errorf("sent %q: header %q, context %q", tc.sent, id, rec.Body.String())
		}
		if (id == tc.sent) != tc.kept {
			t.Errorf("sent %q: got %q, kept=%v", tc.sent, id, tc.kept)
		}
	}
}

// The access log names the request's id, client, route, result, status
// and bytes sent, at info level, and never a header's value.
func TestAccessLog(t *testing.T) {
	for _, tc := range []struct {
		status     int
		result     string
		wantResult string
	}{
		{http.StatusNotFound, "", "result=error"},
		{http.StatusOK, "joined", "result=joined"},
		{http.StatusOK, "", "result=hit"},
		{http.StatusUnauthorized, "", "result=denied"},
	} {
		var buf strings.Builder
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		h := Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := InfoOf(r.Context())
			info.Upstream, info.Repo, info.Ref, info.Kind, info.Result = "docker.io", "library/x", "1", "manifest", tc.result
			w.WriteHeader(tc.status)
			io.WriteString(w, "missing")
		}), RequestID, AccessLog(log))
		req := httptest.NewRequest(http.MethodGet, "/v2/x/manifests/1", nil)
		req.Header.Set("X-Request-Id", "req-1")
		req.Header.Set("Authorization", "Bearer s3cret-token")
		h.ServeHTTP(httptest.NewRecorder(), req)
		line := buf.String()
		for _, want := range []string{"level=INFO", "request_id=req-1", "client=192.0.2.1:1234", "method=GET", "path=/v2/x/manifests/1",
			"upstream=docker.io", "repo=library/x", "ref=1", tc.wantResult, "status=" + strconv.Itoa(tc.status), "bytes=7", "duration="} {
			if !strings.Contains(line, want) {
				t.Errorf("access log %q lacks %q", line, want)
			}
		}
		if strings.Contains(line, "s3cret") || strings.Count(line, "\n") != 1 {
			t.Errorf("access log %q holds a credential or more than a line", line)
		}
	}
}
