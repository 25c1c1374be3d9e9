// Package fs is the filesystem store: blobs under blobs/<alg>/<2 hex>/<hex>,
// records under records/<key>, and fills in progress under tmp/, renamed
// into place only once verified, so that a crash never leaves a partial or
// wrong blob where it could be served.
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

// Store is a store.Store on a local directory.
type Store struct {
	root string
}

var _ store.Store = (*Store)(nil)

// New opens the store at root, creating it if needed, and removes the
// leftovers of fills that a crash interrupted. One process owns a root.
func New(root string) (*Store, error) {
	s := &Store{root: root}
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("store: clean %s: %w", s.tmpDir(), err)
	}
	for _, dir := range []string{s.tmpDir(), filepath.Join(root, "blobs"), filepath.Join(root, "records")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return s, nil
}

func (s *Store) tmpDir() string { return filepath.Join(s.root, "tmp") }

func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	hex := d.Encoded()
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), hex[:2], hex), nil
}

func (s *Store) recordPath(key string) (string, error) {
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\\\x00") {
			return "", fmt.Errorf("store: invalid record key %q", key)
		}
	}
	return filepath.Join(s.root, "records", filepath.FromSlash(key)), nil
}

// Stat implements store.Store.
func (s *Store) Stat(_ context.Context, d digest.Digest) (int64, error) {
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

// Open implements store.Store. The reader is an *os.File.
func (s *Store) Open(_ context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, notFound(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Create implements store.Store.
func (s *Store) Create(context.Context) (store.Writer, error) {
	f, err := os.CreateTemp(s.tmpDir(), "fill-*")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &writer{s: s, f: f}, nil
}

// Get implements store.Store.
func (s *Store) Get(_ context.Context, key string) ([]byte, error) {
	p, err := s.recordPath(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, notFound(err)
	}
	return b, nil
}

// Put implements store.Store: write a temporary file, sync, rename.
func (s *Store) Put(_ context.Context, key string, value []byte) error {
	p, err := s.recordPath(key)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.tmpDir(), "record-*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	_, err = f.Write(value)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	return nil
}

// writer is a fill in progress: a temporary file in tmp/.
type writer struct {
	s *Store
	f *os.File
}

func (w *writer) Write(p []byte) (int, error) { return w.f.Write(p) }

// Reader opens the temporary file anew: each reader has its own offset,
// which sendfile needs, and keeps the file open across the commit's rename.
func (w *writer) Reader() (io.ReadSeekCloser, error) {
	f, err := os.Open(w.f.Name())
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil interface
	}
	return f, nil
}

func (w *writer) Commit(_ context.Context, d digest.Digest) error {
	p, err := w.s.blobPath(d)
	if err == nil {
		// Sync before rename: after a crash the name either is absent or
		// holds every byte.
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rename(w.f.Name(), p)
	}
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("store: commit %s: %w", d, err)
	}
	return nil
}

func (w *writer) Cancel() error {
	w.f.Close()
	return os.Remove(w.f.Name())
}

// rename moves a finished temporary file into place, creating its directory.
func rename(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.Rename(from, to)
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return err
}
