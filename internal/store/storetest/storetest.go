// Package storetest is the conformance test every store.Store backend runs.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// Run checks s, an empty store, against the store.Store contract.
func Run(t *testing.T, s store.Store) {
	ctx := context.Background()
	content := bytes.Repeat([]byte("entrepot "), 10000)
	d := digest.FromBytes(content)

	t.Run("MissingBlob", func(t *testing.T) {
		if _, err := s.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Stat of a missing blob = %v, want ErrNotFound", err)
		}
		if _, _, err := s.Open(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Open of a missing blob = %v, want ErrNotFound", err)
		}
	})

	t.Run("CancelLeavesNothing", func(t *testing.T) {
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(content[:100])
		if err := w.Cancel(); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Stat after Cancel = %v, want ErrNotFound", err)
		}
	})

	t.Run("WriteReadBackCommit", func(t *testing.T) {
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		half := len(content) / 2
		if _, err := w.Write(content[:half]); err != nil {
			t.Fatal(err)
		}
		rd, err := w.Reader()
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		got := make([]byte, 10)
		if _, err := rd.Seek(5, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rd, got); err != nil || !bytes.Equal(got, content[5:15]) {
			t.Fatalf("reading mid-fill = %q, %v; want %q", got, err, content[5:15])
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a blob is visible before Commit: Stat = %v", err)
		}
		if _, err := w.Write(content[half:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx, d); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		// A reader opened during the fill reads on after the commit.
		rest, err := io.ReadAll(rd)
		if err != nil || !bytes.Equal(rest, content[15:]) {
			t.Fatalf("reading on after Commit = %d bytes, %v; want %d", len(rest), err, len(content)-15)
		}
		size, err := s.Stat(ctx, d)
		if err != nil || size != int64(len(content)) {
			t.Fatalf("Stat = %d, %v; want %d", size, err, len(content))
		}
		r, size, err := s.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if size != int64(len(content)) {
			t.Fatalf("Open size = %d, want %d", size, len(content))
		}
		if _, err := r.Seek(100, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		all, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(all, content[100:]) {
			t.Fatalf("read after seek: %d bytes, %v", len(all), err)
		}
	})

	t.Run("ConcurrentCommitsOfOneBlob", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, err := s.Create(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				w.Write(content)
				if err := w.Commit(ctx, d); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if size, err := s.Stat(ctx, d); err != nil || size != int64(len(content)) {
			t.Fatalf("Stat = %d, %v", size, err)
		}
	})

	t.Run("Records", func(t *testing.T) {
		key := "repos/docker.io/library/nginx/_tags/latest"
		if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of a missing record = %v, want ErrNotFound", err)
		}
		for _, v := range []string{"one", "two"} {
			if err := s.Put(ctx, key, []byte(v)); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, key); err != nil || string(got) != v {
				t.Fatalf("Get = %q, %v; want %q", got, err, v)
			}
		}
		// A record beside a deeper one: keys are a tree of names.
		if err := s.Put(ctx, "repos/docker.io/library/nginx/sub/_tags/x", []byte("y")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("BadKeysAreRefused", func(t *testing.T) {
		for _, key := range []string{"", "../escape", "a/../../b", "a//b", "/abs"} {
			if err := s.Put(ctx, key, []byte("x")); err == nil {
				t.Errorf("Put(%q) succeeded, want an error", key)
			}
		}
	})
}
