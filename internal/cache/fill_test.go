package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/opencontainers/go-digest"
)

// fullDisk is a spool on a disk that fills up: a file's writes fail with
// ENOSPC after limit bytes.
type fullDisk struct {
	store.Spool
	limit int
}

func (s fullDisk) Create(ctx context.Context, d digest.Digest) (store.SpoolFile, error) {
	f, err := s.Spool.Create(ctx, d)
	if err != nil {
		return nil, err
	}
	return &fullFile{SpoolFile: f, left: s.limit}, nil
}

type fullFile struct {
	store.SpoolFile
	left int
}

func (f *fullFile) Write(p []byte) (int, error) {
	if len(p) > f.left {
		return 0, syscall.ENOSPC
	}
	f.left -= len(p)
	return f.SpoolFile.Write(p)
}

// A spool that fails mid-fill ends the fill with the error: its clients
// get the failure rather than waiting forever, the spool file is removed,
// the cache closes, and the next request fills again.
func TestSpoolFailingMidFill(t *testing.T) {
	blob := make([]byte, 4<<20)
	rand.Read(blob)
	src := newSource()
	d := src.addBlob(blob)
	root := t.TempDir()
	dir, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	full := dir.Store()
	full.Spool = fullDisk{full.Spool, 1 << 20}
	c := cache.New(context.Background(), full, cache.Options{}, slog.New(slog.DiscardHandler))

	if _, err := readBlob(t, c, src, d); err == nil {
		t.Fatal("copy of a blob whose spool is full succeeded, want the store's error")
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the failed fill never ended")
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if n := c.Stats.BlobFillErrors.Load(); n != 1 {
		t.Fatalf("fill errors = %d, want 1", n)
	}

	// Space again: the next request fills and serves the blob.
	c = newTestCache(t, dir.Store(), cache.Options{})
	if got, err := readBlob(t, c, src, d); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("after the failure: %d bytes, %v", len(got), err)
	}
}

// spoolLog is a spool recording the size of every write.
type spoolLog struct {
	store.Spool
	mu     sync.Mutex
	writes []int
}

func (s *spoolLog) Create(ctx context.Context, d digest.Digest) (store.SpoolFile, error) {
	f, err := s.Spool.Create(ctx, d)
	if err != nil {
		return nil, err
	}
	return loggedFile{f, s}, nil
}

type loggedFile struct {
	store.SpoolFile
	log *spoolLog
}

func (f loggedFile) Write(p []byte) (int, error) {
	f.log.mu.Lock()
	f.log.writes = append(f.log.writes, len(p))
	f.log.mu.Unlock()
	return f.SpoolFile.Write(p)
}

// A fill passes the source's first bytes on at once, and stores the rest
// in whole chunks aligned in the blob, however small the pieces the source
// sends: the page cache then holds the blob in large folios. The test runs
// in a synctest bubble, where the clock stands still while goroutines
// run, so the early cut of a slow chunk (chunkWait) cannot fire however
// slowly the machine runs the test.
func TestFillStreamsAndStoresWholeChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		blob := make([]byte, 3*cache.BufSize+1000)
		rand.Read(blob)
		const first = 1000
		release := make(chan struct{})
		src := newSource()
		d := src.addBlob(blob)
		src.openBlob = func(digest.Digest) io.ReadCloser {
			pr, pw := io.Pipe()
			go func() {
				pw.Write(blob[:first])
				<-release
				for rest := blob[first:]; len(rest) > 0; {
					n := min(len(rest), 777)
					pw.Write(rest[:n])
					rest = rest[n:]
				}
				pw.Close()
			}()
			return pr
		}
		dir, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer dir.Close()
		st := dir.Store()
		log := &spoolLog{Spool: st.Spool}
		st.Spool = log
		c := cache.New(context.Background(), st, cache.Options{}, slog.New(slog.DiscardHandler))
		defer c.Close()

		ctx := context.Background()
		b, err := c.Blob(ctx, src, "library/x", d)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		pr, pw := io.Pipe()
		copied := make(chan error, 1)
		go func() { err := b.Copy(ctx, pw, 0, -1); pw.CloseWithError(err); copied <- err }()

		// The client gets bytes while the source holds back the rest.
		buf := make([]byte, len(blob))
		n, err := pr.Read(buf)
		if err != nil || n == 0 || !bytes.Equal(buf[:n], blob[:n]) {
			t.Fatalf("first read while the source waits: %d bytes, %v", n, err)
		}
		close(release)
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
				t.Errorf("first write %d bytes, before the source sent more than %d", w, first)
			}
			if i > 0 && i < len(log.writes)-1 && off%cache.BufSize != 0 {
				t.Errorf("write %d of %v ends at %d, not on a multiple of %d", i, log.writes, off, cache.BufSize)
			}
		}
		if off != len(blob) || len(log.writes) != 5 {
			t.Errorf("writes %v: %d bytes in %d writes, want %d in 5", log.writes, off, len(log.writes), len(blob))
		}
	})
}
