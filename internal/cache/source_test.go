package cache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/opencontainers/go-digest"
)

// memSource is a registry in memory: a Source that stands in for an
// upstream, with no HTTP in between. Its fields may be set before use.
type memSource struct {
	ttl time.Duration
	// openBlob, when set, replaces the stored blob's body.
	openBlob func(d digest.Digest) io.ReadCloser
	// noReferrersAPI makes Referrers answer as a registry without it.
	noReferrersAPI bool

	mu        sync.Mutex // protects the fields below
	blobs     map[digest.Digest][]byte
	manifests map[string][]byte // by tag and by digest
	mediaType map[digest.Digest]string
	calls     map[string]int // "Resolve", "Manifest", ... -> count
	failing   error          // every call fails with it
}

var _ cache.Source = (*memSource)(nil)

func newSource() *memSource {
	return &memSource{
		ttl:       time.Minute,
		blobs:     map[digest.Digest][]byte{},
		manifests: map[string][]byte{},
		mediaType: map[digest.Digest]string{},
		calls:     map[string]int{},
	}
}

func (s *memSource) addBlob(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	s.mu.Lock()
	s.blobs[d] = b
	s.mu.Unlock()
	return d
}

// addManifest stores a manifest under its digest and the tags given.
func (s *memSource) addManifest(mediaType string, body []byte, tags ...string) digest.Digest {
	d := digest.FromBytes(body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manifests[d.String()] = body
	s.mediaType[d] = mediaType
	for _, t := range tags {
		s.manifests[t] = body
	}
	return d
}

func (s *memSource) count(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[call]
}

func (s *memSource) fail(err error) {
	s.mu.Lock()
	s.failing = err
	s.mu.Unlock()
}

// enter counts a call and returns the failure set, if any.
func (s *memSource) enter(call string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[call]++
	return s.failing
}

func (s *memSource) Name() string       { return "docker.io" }
func (s *memSource) TTL() time.Duration { return s.ttl }
func (s *memSource) Failing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failing != nil
}

func (s *memSource) manifest(ref string) ([]byte, oci.Descriptor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, ok := s.manifests[ref]
	if !ok {
		return nil, oci.Descriptor{}, fmt.Errorf("manifest %s: %w", ref, oci.ErrNotFound)
	}
	d := digest.FromBytes(body)
	return body, oci.Descriptor{Digest: d, MediaType: s.mediaType[d], Size: int64(len(body))}, nil
}

func (s *memSource) Resolve(_ context.Context, _, ref string) (oci.Descriptor, error) {
	if err := s.enter("Resolve"); err != nil {
		return oci.Descriptor{}, err
	}
	_, desc, err := s.manifest(ref)
	return desc, err
}

func (s *memSource) Manifest(_ context.Context, _, ref string) ([]byte, oci.Descriptor, error) {
	if err := s.enter("Manifest"); err != nil {
		return nil, oci.Descriptor{}, err
	}
	return s.manifest(ref)
}

func (s *memSource) StatBlob(_ context.Context, _ string, d digest.Digest) (int64, error) {
	if err := s.enter("StatBlob"); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[d]
	if !ok {
		return 0, fmt.Errorf("blob %s: %w", d, oci.ErrNotFound)
	}
	return int64(len(b)), nil
}

func (s *memSource) OpenBlob(_ context.Context, _ string, d digest.Digest, off int64) (io.ReadCloser, int64, error) {
	if err := s.enter("OpenBlob"); err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	b, ok := s.blobs[d]
	s.mu.Unlock()
	if !ok {
		return nil, 0, fmt.Errorf("blob %s: %w", d, oci.ErrNotFound)
	}
	if s.openBlob != nil {
		return s.openBlob(d), int64(len(b)) - off, nil
	}
	return io.NopCloser(bytes.NewReader(b[off:])), int64(len(b)) - off, nil
}

func (s *memSource) Tags(_ context.Context, repo string, _ url.Values) ([]byte, string, error) {
	if err := s.enter("Tags"); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{Name: repo, Tags: []string{}}
	for ref := range s.manifests {
		if _, err := digest.Parse(ref); err != nil {
			list.Tags = append(list.Tags, ref)
		}
	}
	b, _ := json.Marshal(list)
	return b, "", nil
}

func (s *memSource) Referrers(_ context.Context, _ string, d digest.Digest) ([]byte, error) {
	if err := s.enter("Referrers"); err != nil {
		return nil, err
	}
	if s.noReferrersAPI {
		return nil, fmt.Errorf("referrers: %w", oci.ErrUnsupported)
	}
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), nil
}

// newStore returns a filesystem store in a temporary directory.
func newStore(t testing.TB) store.Store {
	dir, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	return dir.Store()
}

// newTestCache returns a cache over st that the test closes at its end.
func newTestCache(t testing.TB, st store.Store, opt cache.Options) *cache.Cache {
	ctx, cancel := context.WithCancel(context.Background())
	c := cache.New(ctx, st, opt, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { cancel(); c.Close() })
	return c
}

// readBlob reads the whole blob d through c.
func readBlob(t testing.TB, c *cache.Cache, src cache.Source, d digest.Digest) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := c.Blob(ctx, src, "library/x", d)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	var buf bytes.Buffer
	err = b.Copy(ctx, &buf, 0, -1)
	return buf.Bytes(), err
}

// waitFills waits, at most 10 s, for the cache's fills to end: a fill
// commits after its last reader got its bytes.
func waitFills(t *testing.T, c *cache.Cache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Filling() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("fills still running after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
