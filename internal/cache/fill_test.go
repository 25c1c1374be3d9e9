package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
)

// fullDisk is the filesystem store on a disk that fills up: a blob's
// writes fail with ENOSPC after limit bytes.
type fullDisk struct {
	store.Store
	limit int
}

func (s fullDisk) Create(ctx context.Context) (store.Writer, error) {
	w, err := s.Store.Create(ctx)
	if err != nil {
		return nil, err
	}
	return &fullWriter{Writer: w, left: s.limit}, nil
}

type fullWriter struct {
	store.Writer
	left int
}

func (w *fullWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, syscall.ENOSPC
	}
	w.left -= len(p)
	return w.Writer.Write(p)
}

// A store that fails mid-fill ends the fill with the error: its clients
// get the failure rather than waiting forever, the temporary file is
// removed, the cache closes, and the next request fills again.
func TestStoreFailingMidFill(t *testing.T) {
	blob := make([]byte, 4<<20)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	up := origin(t, blob, []byte("{}"))
	dir := t.TempDir()
	fsStore, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(context.Background(), fullDisk{fsStore, 1 << 20}, cache.Options{}, slog.New(slog.DiscardHandler))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b, err := c.Blob(ctx, up, "library/x", d); err == nil {
		err = b.Copy(ctx, io.Discard, 0, -1)
		b.Close()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("copy of a blob whose store is full: %v (context: %v), want the store's error", err, ctx.Err())
		}
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the failed fill never ended")
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if n := c.Stats.BlobFillErrors.Load(); n != 1 {
		t.Fatalf("fill errors = %d, want 1", n)
	}

	// Space again: the next request fills and serves the blob.
	c = cache.New(context.Background(), fsStore, cache.Options{}, slog.New(slog.DiscardHandler))
	defer c.Close()
	b, err := c.Blob(ctx, up, "library/x", d)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got bytes.Buffer
	if err := b.Copy(ctx, &got, 0, -1); err != nil || !bytes.Equal(got.Bytes(), blob) {
		t.Fatalf("after the failure: %d bytes, %v", got.Len(), err)
	}
}

// writeLog is the filesystem store, recording the size of every write.
type writeLog struct {
	store.Store
	mu     sync.Mutex
	writes []int
}

func (s *writeLog) Create(ctx context.Context) (store.Writer, error) {
	w, err := s.Store.Create(ctx)
	if err != nil {
		return nil, err
	}
	return loggedWriter{w, s}, nil
}

type loggedWriter struct {
	store.Writer
	log *writeLog
}

func (w loggedWriter) Write(p []byte) (int, error) {
	w.log.mu.Lock()
	w.log.writes = append(w.log.writes, len(p))
	w.log.mu.Unlock()
	return w.Writer.Write(p)
}

// A fill passes the upstream's first bytes on at once, and stores the rest
// in whole chunks aligned in the blob, however small the pieces the
// upstream sends: the page cache then holds the blob in large folios.
func TestFillStreamsAndStoresWholeChunks(t *testing.T) {
	blob := make([]byte, 3*cache.BufSize+1000)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	const first = 1000
	release := make(chan struct{})
	var released sync.Once
	defer released.Do(func() { close(release) }) // on failure, lets the upstream finish
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		w.Write(blob[:first])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		for rest := blob[first:]; len(rest) > 0; {
			n := min(len(rest), 777)
			w.Write(rest[:n])
			w.(http.Flusher).Flush()
			rest = rest[n:]
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	up := &cache.Upstream{Client: upstream.New(config.Upstream{Name: "docker.io", URL: u}, nil, nil)}
	fsStore, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := &writeLog{Store: fsStore}
	fillCtx, cancelFill := context.WithCancel(context.Background())
	c := cache.New(fillCtx, log, cache.Options{}, slog.New(slog.DiscardHandler))
	defer func() { cancelFill(); c.Close() }() // on failure, ends the fill at once

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := c.Blob(ctx, up, "library/x", d)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pr, pw := io.Pipe()
	defer pr.Close()
	copied := make(chan error, 1)
	go func() { err := b.Copy(ctx, pw, 0, -1); pw.CloseWithError(err); copied <- err }()

	// The client gets bytes while the upstream holds back the rest.
	buf := make([]byte, len(blob))
	n, err := pr.Read(buf)
	if err != nil || n == 0 || !bytes.Equal(buf[:n], blob[:n]) {
		t.Fatalf("first read while the upstream waits: %d bytes, %v", n, err)
	}
	released.Do(func() { close(release) })
	rest, err := io.ReadAll(pr)
	if err != nil || !bytes.Equal(append(buf[:n], rest...), blob) {
		t.Fatalf("whole blob: %d bytes, %v", n+len(rest), err)
	}
	if err := <-copied; err != nil {
		t.Fatal(err)
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	var off int
	for i, w := range log.writes {
		off += w
		if i == 0 && w > first {
			t.Errorf("first write %d bytes, before the upstream sent more than %d", w, first)
		}
		if i > 0 && i < len(log.writes)-1 && off%cache.BufSize != 0 {
			t.Errorf("write %d of %v ends at %d, not on a multiple of %d", i, log.writes, off, cache.BufSize)
		}
	}
	if off != len(blob) || len(log.writes) != 5 {
		t.Errorf("writes %v: %d bytes in %d writes, want %d in 5", log.writes, off, len(log.writes), len(blob))
	}
}
