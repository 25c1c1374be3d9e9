// Package fs is the filesystem store: the spool under tmp/, verified blobs
// under blobs/<alg>/<2 hex>/<hex>, and records under records/<key>. A fill
// is renamed from tmp/ into blobs/ only once verified, so that a crash
// never leaves a partial or wrong blob where it could be served.
//
// One process owns a data directory: New locks it (flock on its lock
// file) and a second process on the same directory gets ErrLocked, which
// names the process that holds it.
package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// Dir is a data directory: the spool, the content and the records of
// a store.Store, on local disk.
type Dir struct {
	root string
	lock *os.File // held, flocked, until Close

	mu    sync.Mutex // protects the fields below, and orders a commit's look and rename
	usage store.Usage
	// The blobs are counted when Usage is first asked for, in the
	// background of the store's work, so that opening a large store costs
	// nothing (a walk of 100,000 blobs takes a core for about a second).
	// Until the count begins, commits and deletes need not be counted: the
	// walk will see the disk as they left it. The count walks blobs/ in
	// lexical order, adding to usage; walked is the last path it reached.
	// A commit or delete meanwhile adjusts usage at once where the walk has
	// passed (it counted the old state), and otherwise notes its digest in
	// changed: the walk skips those, and at its end adds what is on disk
	// for them. Once counted is closed, usage is exact.
	begun       bool
	walked      string
	changed     map[digest.Digest]bool
	counted     chan struct{} // closed once usage is exact
	countErr    error
	countCtx    context.Context
	stopCount   context.CancelFunc
	countExited chan struct{}
}

// The three parts of a Dir, each the Dir under the interface's names.
type (
	spool   struct{ *Dir }
	content struct{ *Dir }
	records struct{ *Dir }
)

var (
	_ store.Spool   = spool{}
	_ store.Content = content{}
	_ store.Records = records{}
)

// Store returns the directory's spool, content and records.
func (s *Dir) Store() store.Store {
	return store.Store{Spool: spool{s}, Content: content{s}, Records: records{s}}
}

// ErrLocked is returned by New when another process holds the directory.
var ErrLocked = errors.New("data directory in use")

// New opens the store at root, creating it if needed: it locks the
// directory, removes the leftovers of fills that a crash interrupted, and
// counts the blobs held. Close releases the lock.
func New(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	lock, err := lockDir(root)
	if err != nil {
		return nil, err
	}
	s := &Dir{root: root, lock: lock, changed: map[digest.Digest]bool{},
		counted: make(chan struct{}), countExited: make(chan struct{})}
	if err := s.init(); err != nil {
		lock.Close()
		return nil, err
	}
	s.countCtx, s.stopCount = context.WithCancel(context.Background())
	return s, nil
}

func (s *Dir) init() error {
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return fmt.Errorf("store: clean %s: %w", s.tmpDir(), err)
	}
	for _, dir := range []string{s.tmpDir(), s.blobsDir(), s.recordsDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// Close stops counting, if it still does, and releases the directory's
// lock. The store must not be used after.
func (s *Dir) Close() error {
	s.stopCount()
	s.beginCount() // ends at once, cancelled, if it had not begun
	<-s.countExited
	return s.lock.Close() // closing the file drops the flock
}

// lockDir takes the lock of root, and writes this process's id in it for
// the next one to read.
// beginCount starts the count of the blobs, once.
func (s *Dir) beginCount() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.begun {
		s.begun = true
		go s.count(s.countCtx)
	}
}

func lockDir(root string) (*os.File, error) {
	path := filepath.Join(root, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("store: lock %s: %w", path, err)
		}
		holder, _ := os.ReadFile(path)
		if pid := string(bytes.TrimSpace(holder)); pid != "" {
			return nil, fmt.Errorf("%w: %s is locked by process %s", ErrLocked, root, pid)
		}
		return nil, fmt.Errorf("%w: %s is locked by another process", ErrLocked, root)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func (s *Dir) tmpDir() string     { return filepath.Join(s.root, "tmp") }
func (s *Dir) blobsDir() string   { return filepath.Join(s.root, "blobs") }
func (s *Dir) recordsDir() string { return filepath.Join(s.root, "records") }

// walkFiles calls fn for every file under root, in lexical order, until
// ctx ends or fn fails. Files and directories removed while it walks are
// skipped.
func walkFiles(ctx context.Context, root string, fn func(path string, e fs.DirEntry) error) error {
	return filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case e.IsDir():
			return ctx.Err()
		}
		return fn(path, e)
	})
}

// rename moves a finished temporary file into place, creating its directory.
func rename(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.Rename(from, to)
}

func notFound(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	return err
}
