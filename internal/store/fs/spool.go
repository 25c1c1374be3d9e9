package fs

import (
	"context"
	"fmt"
	"github.com/opencontainers/go-digest"
	"io"
	"os"

	"github.com/entrepot/entrepot/internal/store"
)

// Create implements store.Spool: a temporary file in tmp/.
func (s spool) Create(context.Context, digest.Digest) (store.SpoolFile, error) {
	f, err := os.CreateTemp(s.tmpDir(), "fill-*")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &spoolFile{s: s.Dir, f: f}, nil
}

// spoolFile is a fill in progress.
type spoolFile struct {
	s *Dir
	f *os.File
}

func (w *spoolFile) Write(p []byte) (int, error) { return w.f.Write(p) }

// Reader opens the temporary file anew: each reader has its own offset,
// which sendfile needs, and keeps the file open across the commit's rename
// or the discard's removal. The reader is an *os.File.
func (w *spoolFile) Reader(off int64) (io.ReadCloser, error) {
	f, err := os.Open(w.f.Name())
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil interface
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (w *spoolFile) Discard() error {
	w.f.Close()
	return os.Remove(w.f.Name())
}
