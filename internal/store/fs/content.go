package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

func (s *Dir) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	hex := d.Encoded()
	return filepath.Join(s.blobsDir(), string(d.Algorithm()), hex[:2], hex), nil
}

// Stat implements store.Content.
func (s content) Stat(_ context.Context, d digest.Digest) (int64, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, notFound(err)
	}
	return fi.Size(), nil
}

// Open implements store.Content. The reader is an *os.File, so that
// net/http sends it with sendfile.
func (s content) Open(_ context.Context, d digest.Digest, off int64) (io.ReadCloser, int64, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, notFound(err)
	}
	fi, err := f.Stat()
	if err == nil && off > 0 {
		_, err = f.Seek(off, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Commit implements store.Content: sync the spool file, and rename it into
// place, unless the blob is there already. A spool file of another spool
// (a wrapper of this one, say) is copied first.
func (s content) Commit(ctx context.Context, d digest.Digest, sf store.SpoolFile) error {
	w, ok := sf.(*spoolFile)
	if !ok || w.s != s.Dir {
		var err error
		if w, err = s.copySpool(ctx, sf); err != nil {
			return fmt.Errorf("store: commit %s: %w", d, err)
		}
	}
	p, err := s.blobPath(d)
	var fi os.FileInfo
	if err == nil {
		// Sync before rename: after a crash the name either is absent
		// or holds every byte.
		err = w.f.Sync()
	}
	if err == nil {
		fi, err = w.f.Stat()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.place(w.f.Name(), p, fi.Size())
	}
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("store: commit %s: %w", d, err)
	}
	return nil
}

// copySpool copies another spool's file into one of this store's, and
// discards it.
func (s content) copySpool(ctx context.Context, sf store.SpoolFile) (*spoolFile, error) {
	defer sf.Discard()
	r, err := sf.Reader(0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	own, err := spool{s.Dir}.Create(ctx, "")
	if err != nil {
		return nil, err
	}
	w := own.(*spoolFile)
	if _, err := io.Copy(w.f, r); err != nil {
		w.Discard()
		return nil, err
	}
	return w, nil
}

// place renames a finished file to p and counts it, unless p is there
// already (the same bytes, as the name is their digest).
func (s *Dir) place(tmp, p string, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(p); err == nil {
		return os.Remove(tmp)
	}
	if err := rename(tmp, p); err != nil {
		return err
	}
	s.adjust(p, size, 1)
	return nil
}

// Delete implements store.Content.
func (s content) Delete(_ context.Context, d digest.Digest) error {
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil {
		return fmt.Errorf("store: delete %s: %w", d, err)
	}
	s.adjust(p, -fi.Size(), -1)
	return nil
}

// Walk implements store.Content.
func (s content) Walk(ctx context.Context, fn func(digest.Digest, int64) error) error {
	return s.walkBlobs(ctx, func(path string, d digest.Digest, e fs.DirEntry) error {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		if err != nil {
			return err
		}
		return fn(d, fi.Size())
	})
}

// walkBlobs calls fn for every blob file under blobs/, in lexical order of
// their paths; files that are no blob (strays) are skipped.
func (s *Dir) walkBlobs(ctx context.Context, fn func(path string, d digest.Digest, e fs.DirEntry) error) error {
	return walkFiles(ctx, s.blobsDir(), func(path string, e fs.DirEntry) error {
		d, ok := s.digestOf(path)
		if !ok {
			return nil
		}
		return fn(path, d, e)
	})
}

// digestOf is the digest of the blob stored at path, if it is one.
func (s *Dir) digestOf(path string) (digest.Digest, bool) {
	rel, err := filepath.Rel(s.blobsDir(), path)
	if err != nil {
		return "", false
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) != 3 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
	if d.Validate() != nil || !strings.HasPrefix(parts[2], parts[1]) || len(parts[1]) != 2 {
		return "", false
	}
	return d, true
}

// Usage implements store.Content. The first call starts the count of the
// blobs, and calls wait until it is done.
func (s content) Usage(ctx context.Context) (store.Usage, error) {
	s.beginCount()
	select {
	case <-s.counted:
	case <-ctx.Done():
		return store.Usage{}, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage, s.countErr
}

// adjust counts a blob of size bytes placed (n = 1) or removed (n = -1) at
// p. Called with mu held.
func (s *Dir) adjust(p string, size, n int64) {
	select {
	case <-s.counted:
		s.usage.Bytes += size
		s.usage.Count += n
	default: // the count is under way, or has not begun
		if !s.begun {
			return // the walk will see the disk as it is now
		}
		d, ok := s.digestOf(p)
		switch {
		case !ok || s.changed[d]: // settled at the count's end
		case p <= s.walked: // the walk counted the blob's old state
			s.usage.Bytes += size
			s.usage.Count += n
		default:
			s.changed[d] = true
		}
	}
}

// count sets the usage from what is on disk.
func (s *Dir) count(ctx context.Context) {
	defer close(s.countExited)
	err := s.walkBlobs(ctx, func(path string, d digest.Digest, _ fs.DirEntry) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.walked = path
		if s.changed[d] {
			return nil
		}
		// Under mu, so that no commit or delete of this blob runs between
		// its stat and the count.
		if fi, err := os.Stat(path); err == nil {
			s.usage.Bytes += fi.Size()
			s.usage.Count++
		}
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := range s.changed {
		if p, perr := s.blobPath(d); perr == nil {
			if fi, serr := os.Stat(p); serr == nil {
				s.usage.Bytes += fi.Size()
				s.usage.Count++
			}
		}
	}
	s.changed = nil
	if err != nil {
		s.countErr = fmt.Errorf("store: counting blobs: %w", err)
	}
	close(s.counted)
}
