package fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func (s *Dir) recordPath(key string) (string, error) {
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\\\x00") {
			return "", fmt.Errorf("store: invalid record key %q", key)
		}
	}
	return filepath.Join(s.recordsDir(), filepath.FromSlash(key)), nil
}

// Get implements store.Records.
func (s records) Get(_ context.Context, key string) ([]byte, error) {
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

// Put implements store.Records: write a temporary file, sync, rename.
func (s records) Put(_ context.Context, key string, value []byte) error {
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

// Delete implements store.Records.
func (s records) Delete(_ context.Context, key string) error {
	p, err := s.recordPath(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	return nil
}

// Walk implements store.Records.
func (s records) Walk(ctx context.Context, prefix string, fn func(string) error) error {
	dir := s.recordsDir()
	if prefix != "" {
		p, err := s.recordPath(prefix)
		if err != nil {
			return err
		}
		dir = p
	}
	return walkFiles(ctx, dir, func(path string, _ fs.DirEntry) error {
		rel, err := filepath.Rel(s.recordsDir(), path)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel))
	})
}
