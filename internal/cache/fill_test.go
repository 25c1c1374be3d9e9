package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
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
