package cache

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// slowReader gives one byte per Read, after a pause.
type slowReader struct{ pause time.Duration }

func (r slowReader) Read(p []byte) (int, error) {
	time.Sleep(r.pause)
	p[0] = 'x'
	return 1, nil
}

func TestReadChunk(t *testing.T) {
	buf := make([]byte, 64)
	broken := errors.New("connection reset")
	for _, tc := range []struct {
		name    string
		r       io.Reader
		written int64
		n       int
		err     error
	}{
		// The first chunk is one read, however small.
		{"first", iotest.OneByteReader(strings.NewReader(strings.Repeat("a", 100))), 0, 1, nil},
		// Later ones run to the next multiple of len(buf).
		{"to the boundary", iotest.OneByteReader(strings.NewReader(strings.Repeat("a", 100))), 10, 54, nil},
		{"whole", iotest.HalfReader(strings.NewReader(strings.Repeat("a", 100))), 64, 64, nil},
		{"end of the blob", strings.NewReader("abc"), 64, 3, io.EOF},
		// A read error comes back as it is, with the bytes before it.
		{"error", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(broken)), 64, 3, broken},
		{"unexpected EOF", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrUnexpectedEOF)), 64, 3, io.ErrUnexpectedEOF},
	} {
		n, err := readChunk(tc.r, buf, tc.written)
		if n != tc.n || err != tc.err {
			t.Errorf("%s: %d bytes, %v; want %d, %v", tc.name, n, err, tc.n, tc.err)
		}
	}
}

// From an upstream too slow to fill a chunk within chunkWait, a chunk ends
// early rather than holding the bytes back from the clients.
func TestReadChunkFromSlowUpstream(t *testing.T) {
	buf := make([]byte, bufSize)
	n, err := readChunk(slowReader{pause: chunkWait / 10}, buf, 1)
	if err != nil || n == 0 || n >= len(buf)-1 {
		t.Fatalf("%d bytes, %v; want a few, short of the chunk's %d", n, err, len(buf)-1)
	}
}
