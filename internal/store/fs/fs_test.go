package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/storetest"
	"github.com/opencontainers/go-digest"
)

func open(t *testing.T, root string) *Dir {
	t.Helper()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	t.Run("Spool", func(t *testing.T) { storetest.Spool(t, open(t, t.TempDir()).Store().Spool) })
	t.Run("Content", func(t *testing.T) {
		s := open(t, t.TempDir()).Store()
		storetest.Content(t, s.Content, s.Spool)
	})
	t.Run("Records", func(t *testing.T) { storetest.Records(t, open(t, t.TempDir()).Store().Records) })
}

// A fill interrupted by a crash leaves a file in tmp/; reopening the store
// removes it, and it was never visible as a blob.
func TestNewCleansInterruptedFills(t *testing.T) {
	root := t.TempDir()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.Store().Spool.Create(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("partial"))
	d.Close() // no Commit or Discard: the process "dies" here
	open(t, root)
	left, _ := os.ReadDir(filepath.Join(root, "tmp"))
	if len(left) != 0 {
		t.Fatalf("tmp/ still holds %d files after reopening", len(left))
	}
}

// A second store on a directory in use is refused, names the process that
// holds it, and leaves that store's fills alone.
func TestDirectoryIsLocked(t *testing.T) {
	root := t.TempDir()
	first := open(t, root)
	f, err := first.Store().Spool.Create(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Discard()
	f.Write([]byte("in progress"))

	_, err = New(root)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("New on a locked directory = %v, want ErrLocked naming process %d", err, os.Getpid())
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) != 1 {
		t.Fatalf("tmp/ holds %d files after the refused open, want the first store's fill", len(left))
	}
	first.Close()
	open(t, root) // free again
}

// Usage survives a restart: it is counted from the disk at open.
func TestUsageCountedAtOpen(t *testing.T) {
	root := t.TempDir()
	d := open(t, root)
	ctx := context.Background()
	s := d.Store()
	for _, b := range []string{"one", "three"} {
		f, err := s.Spool.Create(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(b))
		if err := s.Content.Commit(ctx, digest.FromString(b), f); err != nil {
			t.Fatal(err)
		}
	}
	// A stray file under blobs/ is not a blob.
	os.WriteFile(filepath.Join(root, "blobs", "stray"), []byte("x"), 0o644)
	d.Close()
	u, err := open(t, root).Store().Content.Usage(ctx)
	if err != nil || u != (store.Usage{Bytes: 8, Count: 2}) {
		t.Fatalf("Usage after reopening = %+v, %v; want 2 blobs of 8 bytes", u, err)
	}
}

// The blobs are counted in the background, on the first Usage, so that
// a large store opens at once; commits and deletes made while the count
// runs are counted exactly once, whatever their order with the walk.
func TestUsageWhileCounting(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	var present []digest.Digest
	for i := range 1000 {
		b := []byte(strconv.Itoa(i))
		d := digest.FromBytes(b)
		p := filepath.Join(root, "blobs", "sha256", d.Encoded()[:2], d.Encoded())
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		present = append(present, d)
	}
	dir := open(t, root)
	s := dir.Store()
	dir.beginCount() // as the first Usage does
	for i := range 100 {
		b := []byte("new " + strconv.Itoa(i))
		f, err := s.Spool.Create(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		f.Write(b)
		if err := s.Content.Commit(ctx, digest.FromBytes(b), f); err != nil {
			t.Fatal(err)
		}
		if err := s.Content.Delete(ctx, present[i*7]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Content.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want store.Usage
	s.Content.Walk(ctx, func(_ digest.Digest, size int64) error {
		want.Bytes += size
		want.Count++
		return nil
	})
	if got != want || want.Count != 1000 {
		t.Fatalf("Usage = %+v, what is on disk: %+v (want 1000 blobs)", got, want)
	}
}
