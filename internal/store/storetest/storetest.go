// Package storetest is the conformance test of the store interfaces: every
// backend runs the tests of the interfaces it implements.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

var content = bytes.Repeat([]byte("entrepot "), 10000)

// Spool checks sp, an empty spool, against the store.Spool contract.
func Spool(t *testing.T, sp store.Spool) {
	ctx := context.Background()
	t.Run("ReadWhileWriting", func(t *testing.T) {
		f, err := sp.Create(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		half := len(content) / 2
		if _, err := f.Write(content[:half]); err != nil {
			t.Fatal(err)
		}
		r, err := f.Reader(5)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := make([]byte, 10)
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, content[5:15]) {
			t.Fatalf("reading mid-fill = %q, %v; want %q", got, err, content[5:15])
		}
		if _, err := f.Write(content[half:]); err != nil {
			t.Fatal(err)
		}
		if err := f.Discard(); err != nil {
			t.Fatalf("Discard: %v", err)
		}
		// A reader opened before the discard reads on.
		rest, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(rest, content[15:]) {
			t.Fatalf("reading on after Discard = %d bytes, %v; want %d", len(rest), err, len(content)-15)
		}
	})
	t.Run("ReadersAreIndependent", func(t *testing.T) {
		f, err := sp.Create(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Discard()
		f.Write(content)
		a, err := f.Reader(0)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := f.Reader(100)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ga, _ := io.ReadAll(a)
		gb, _ := io.ReadAll(b)
		if !bytes.Equal(ga, content) || !bytes.Equal(gb, content[100:]) {
			t.Fatalf("readers at 0 and 100 read %d and %d bytes", len(ga), len(gb))
		}
	})
}

// Content checks c, empty, against the store.Content contract; sp is the
// spool whose files c commits.
func Content(t *testing.T, c store.Content, sp store.Spool) {
	ctx := context.Background()
	d := digest.FromBytes(content)
	spooled := func(t *testing.T, b []byte) store.SpoolFile {
		f, err := sp.Create(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		return f
	}
	usage := func(t *testing.T) store.Usage {
		u, err := c.Usage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}

	t.Run("MissingBlob", func(t *testing.T) {
		if _, err := c.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Stat of a missing blob = %v, want ErrNotFound", err)
		}
		if _, _, err := c.Open(ctx, d, 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Open of a missing blob = %v, want ErrNotFound", err)
		}
		if err := c.Delete(ctx, d); err != nil {
			t.Fatalf("Delete of a missing blob = %v, want nil", err)
		}
		if u := usage(t); u != (store.Usage{}) {
			t.Fatalf("Usage of an empty store = %+v", u)
		}
	})

	t.Run("DiscardLeavesNothing", func(t *testing.T) {
		f := spooled(t, content[:100])
		if err := f.Discard(); err != nil {
			t.Fatalf("Discard: %v", err)
		}
		if _, err := c.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Stat after Discard = %v, want ErrNotFound", err)
		}
	})

	t.Run("CommitOpenDelete", func(t *testing.T) {
		f := spooled(t, content)
		r, err := f.Reader(0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := c.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a blob is visible before Commit: Stat = %v", err)
		}
		if err := c.Commit(ctx, d, f); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		// A reader of the spool file reads on after the commit.
		if all, err := io.ReadAll(r); err != nil || !bytes.Equal(all, content) {
			t.Fatalf("reading the spool after Commit = %d bytes, %v", len(all), err)
		}
		if size, err := c.Stat(ctx, d); err != nil || size != int64(len(content)) {
			t.Fatalf("Stat = %d, %v; want %d", size, err, len(content))
		}
		if u := usage(t); u != (store.Usage{Bytes: int64(len(content)), Count: 1}) {
			t.Fatalf("Usage = %+v, want one blob of %d bytes", u, len(content))
		}
		br, size, err := c.Open(ctx, d, 100)
		if err != nil {
			t.Fatal(err)
		}
		defer br.Close()
		if size != int64(len(content)) {
			t.Fatalf("Open size = %d, want %d", size, len(content))
		}
		var walked []digest.Digest
		if err := c.Walk(ctx, func(got digest.Digest, size int64) error {
			if size != int64(len(content)) {
				t.Errorf("Walk: %s has size %d", got, size)
			}
			walked = append(walked, got)
			return nil
		}); err != nil || !slices.Equal(walked, []digest.Digest{d}) {
			t.Fatalf("Walk = %v, %v; want [%s]", walked, err, d)
		}
		if err := c.Delete(ctx, d); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := c.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Stat after Delete = %v, want ErrNotFound", err)
		}
		if u := usage(t); u != (store.Usage{}) {
			t.Fatalf("Usage after Delete = %+v, want none", u)
		}
		// A reader opened before the delete reads on.
		if all, err := io.ReadAll(br); err != nil || !bytes.Equal(all, content[100:]) {
			t.Fatalf("reading on after Delete = %d bytes, %v", len(all), err)
		}
	})

	// A spool file created for its blob (which a backend may store while
	// it arrives) commits as one created for nothing, and its discard
	// leaves nothing.
	t.Run("CommitOfAFileForItsBlob", func(t *testing.T) {
		f, err := sp.Create(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		for chunk := range slices.Chunk(content, 4096) {
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a blob is visible before Commit: Stat = %v", err)
		}
		if err := c.Commit(ctx, d, f); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		r, size, err := c.Open(ctx, d, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if all, err := io.ReadAll(r); err != nil || size != int64(len(content)) || !bytes.Equal(all, content) {
			t.Fatalf("Open = %d bytes of %d, %v; want the %d committed", len(all), size, err, len(content))
		}
		if u := usage(t); u != (store.Usage{Bytes: int64(len(content)), Count: 1}) {
			t.Fatalf("Usage = %+v, want one blob of %d bytes", u, len(content))
		}
		if err := c.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}

		f, err = sp.Create(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(content)
		if err := f.Discard(); err != nil {
			t.Fatalf("Discard: %v", err)
		}
		if _, err := c.Stat(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Stat after Discard = %v, want ErrNotFound", err)
		}
	})

	t.Run("OpenFromOffsets", func(t *testing.T) {
		if err := c.Commit(ctx, d, spooled(t, content)); err != nil {
			t.Fatal(err)
		}
		defer c.Delete(ctx, d)
		for _, off := range []int64{0, 1, 4095, int64(len(content)) - 1, int64(len(content))} {
			r, size, err := c.Open(ctx, d, off)
			if err != nil {
				t.Fatalf("Open at %d: %v", off, err)
			}
			all, err := io.ReadAll(r)
			r.Close()
			if err != nil || size != int64(len(content)) || !bytes.Equal(all, content[off:]) {
				t.Fatalf("Open at %d = %d bytes, size %d, %v; want %d bytes, size %d",
					off, len(all), size, err, len(content)-int(off), len(content))
			}
		}
	})

	t.Run("ConcurrentCommitsOfOneBlob", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			f := spooled(t, content)
			wg.Go(func() {
				if err := c.Commit(ctx, d, f); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if size, err := c.Stat(ctx, d); err != nil || size != int64(len(content)) {
			t.Fatalf("Stat = %d, %v", size, err)
		}
		if u := usage(t); u != (store.Usage{Bytes: int64(len(content)), Count: 1}) {
			t.Fatalf("Usage = %+v, want the blob counted once", u)
		}
		if err := c.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WalkStopsOnError", func(t *testing.T) {
		for _, b := range [][]byte{[]byte("a"), []byte("b")} {
			if err := c.Commit(ctx, digest.FromBytes(b), spooled(t, b)); err != nil {
				t.Fatal(err)
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := c.Walk(ctx, func(digest.Digest, int64) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("Walk = %v after %d calls, want the callback's error after 1", err, calls)
		}
	})
}

// Records checks r, empty, against the store.Records contract.
func Records(t *testing.T, r store.Records) {
	ctx := context.Background()
	key := "repos/docker.io/library/nginx/_tags/latest"
	t.Run("GetPutDelete", func(t *testing.T) {
		if _, err := r.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of a missing record = %v, want ErrNotFound", err)
		}
		for _, v := range []string{"one", "two"} {
			if err := r.Put(ctx, key, []byte(v)); err != nil {
				t.Fatal(err)
			}
			if got, err := r.Get(ctx, key); err != nil || string(got) != v {
				t.Fatalf("Get = %q, %v; want %q", got, err, v)
			}
		}
		if err := r.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
		}
		if err := r.Delete(ctx, key); err != nil {
			t.Fatalf("Delete of a missing record = %v, want nil", err)
		}
	})
	t.Run("Walk", func(t *testing.T) {
		keys := []string{
			"repos/docker.io/library/nginx/_tags/latest",
			"repos/docker.io/library/nginx/_tags/1.27",
			// A record beside a deeper one: keys are a tree of names.
			"repos/docker.io/library/nginx/sub/_tags/x",
			"manifests/sha256/abc",
		}
		for _, k := range keys {
			if err := r.Put(ctx, k, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		walk := func(prefix string) []string {
			var got []string
			if err := r.Walk(ctx, prefix, func(k string) error { got = append(got, k); return nil }); err != nil {
				t.Fatalf("Walk(%q): %v", prefix, err)
			}
			slices.Sort(got)
			return got
		}
		all := slices.Sorted(slices.Values(keys))
		if got := walk(""); !slices.Equal(got, all) {
			t.Fatalf("Walk(\"\") = %v, want %v", got, all)
		}
		if got := walk("repos/docker.io/library/nginx/_tags"); !slices.Equal(got, all[1:3]) {
			t.Fatalf("Walk of the tags = %v, want %v", got, all[1:3])
		}
		if got := walk("repos/none"); len(got) != 0 {
			t.Fatalf("Walk of a missing prefix = %v, want none", got)
		}
	})
	t.Run("BadKeysAreRefused", func(t *testing.T) {
		for _, key := range []string{"", "../escape", "a/../../b", "a//b", "/abs"} {
			if err := r.Put(ctx, key, []byte("x")); err == nil {
				t.Errorf("Put(%q) succeeded, want an error", key)
			}
		}
	})
}
