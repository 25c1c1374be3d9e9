package fs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/entrepot/entrepot/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, s)
}

// A fill interrupted by a crash leaves a file in tmp/; reopening the store
// removes it, and it was never visible as a blob.
func TestNewCleansInterruptedFills(t *testing.T) {
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	// No Commit or Cancel: the process "dies" here.
	if _, err := New(root); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(filepath.Join(root, "tmp"))
	if len(left) != 0 {
		t.Fatalf("tmp/ still holds %d files after reopening", len(left))
	}
}
