package cache

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A catalog is a snapshot of what the store holds, read from its content
// and records: the blobs, the manifests and what each references, the tags,
// and the repositories each manifest was fetched for. Eviction, purge and
// listing work on one. It is read in the background, never before serving.
type catalog struct {
	blobs     map[digest.Digest]int64 // every blob, with its size
	manifests map[digest.Digest]*catManifest
	tags      []*catTag
}

// catManifest is a stored manifest: a manifest record whose body is held.
type catManifest struct {
	digest    digest.Digest
	mediaType string
	refs      []digest.Digest // an index's manifests, an image's config and layers
	repos     []repoName      // where it was fetched for
	tags      []*catTag       // the tags that point to it
	parents   int             // the stored manifests that reference it
	base      digest.Digest   // the image it was built from, if it says
}

// catTag is a tag record.
type catTag struct {
	repoName
	tag     string
	digest  digest.Digest
	frozen  bool
	checked time.Time // a record that no longer says this has changed since
}

// repoName is a repository of a source.
type repoName struct{ source, repo string }

func (r repoName) String() string { return r.source + "/" + r.repo }

// refsCache keeps what each manifest references between catalog reads:
// manifests are immutable, so each body is read and parsed once.
type refsCache struct {
	mu sync.Mutex // protects m
	m  map[digest.Digest]manifestRefs
}

// manifestRefs is what a catalog reads of a stored manifest's body.
type manifestRefs struct {
	refs []digest.Digest // parseRefs
	// base is its org.opencontainers.image.base.digest annotation: the
	// image it was built from (derived images have it).
	base digest.Digest
}

func (r *refsCache) forget(d digest.Digest) {
	r.mu.Lock()
	delete(r.m, d)
	r.mu.Unlock()
}

// readCatalog reads the store into a catalog.
func (c *Cache) readCatalog(ctx context.Context) (*catalog, error) {
	cat := &catalog{blobs: map[digest.Digest]int64{}, manifests: map[digest.Digest]*catManifest{}}
	err := c.store.Content.Walk(ctx, func(d digest.Digest, size int64) error {
		cat.blobs[d] = size
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = c.store.Records.Walk(ctx, "manifests", func(key string) error {
		d, ok := digestOfKey(strings.TrimPrefix(key, "manifests/"))
		if !ok {
			return nil
		}
		if _, held := cat.blobs[d]; !held {
			// The body is gone, or it was committed after the walk of the
			// blobs and the record before this one: not stored, for now.
			return nil
		}
		var m Manifest
		if err := c.getJSON(ctx, key, &m); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
		refs, err := c.manifestRefs(ctx, d)
		if err != nil {
			return err
		}
		cat.manifests[d] = &catManifest{digest: d, mediaType: m.MediaType, refs: refs.refs, base: refs.base}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, m := range cat.manifests {
		for _, r := range m.refs {
			if child := cat.manifests[r]; child != nil {
				child.parents++
			}
		}
	}
	err = c.store.Records.Walk(ctx, "repos", func(key string) error {
		return cat.addRepoRecord(ctx, c, key)
	})
	return cat, err
}

// addRepoRecord adds a tag or link record to the catalog.
func (cat *catalog) addRepoRecord(ctx context.Context, c *Cache, key string) error {
	rest := strings.TrimPrefix(key, "repos/")
	source, rest, _ := strings.Cut(rest, "/")
	if repo, tag, ok := strings.Cut(rest, "/_tags/"); ok {
		var rec tagRecord
		if err := c.getJSON(ctx, key, &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
		t := &catTag{repoName: repoName{source, repo}, tag: tag, digest: rec.Digest, frozen: rec.Frozen, checked: rec.Checked}
		cat.tags = append(cat.tags, t)
		if m := cat.manifests[rec.Digest]; m != nil {
			m.tags = append(m.tags, t)
		}
		return nil
	}
	if repo, link, ok := strings.Cut(rest, "/_manifests/"); ok {
		if d, ok := digestOfKey(link); ok {
			if m := cat.manifests[d]; m != nil {
				m.repos = append(m.repos, repoName{source, repo})
			}
		}
	}
	return nil
}

// digestOfKey parses the <alg>/<hex> end of a record key.
func digestOfKey(s string) (digest.Digest, bool) {
	alg, hex, ok := strings.Cut(s, "/")
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	return d, d.Validate() == nil
}

// manifestRefs returns what stored manifest d references.
func (c *Cache) manifestRefs(ctx context.Context, d digest.Digest) (manifestRefs, error) {
	c.refs.mu.Lock()
	refs, ok := c.refs.m[d]
	c.refs.mu.Unlock()
	if ok {
		return refs, nil
	}
	r, size, err := c.store.Content.Open(ctx, d, 0)
	if errors.Is(err, store.ErrNotFound) {
		return manifestRefs{}, nil
	}
	if err != nil {
		return manifestRefs{}, err
	}
	defer r.Close()
	if size > oci.MaxManifestSize {
		return manifestRefs{}, nil
	}
	body, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return manifestRefs{}, err
	}
	refs = manifestRefs{refs: parseRefs(body), base: parseBase(body)}
	c.refs.mu.Lock()
	if c.refs.m == nil {
		c.refs.m = map[digest.Digest]manifestRefs{}
	}
	c.refs.m[d] = refs
	c.refs.mu.Unlock()
	return refs, nil
}

// parseRefs lists what a manifest body references: an index's manifests,
// or an image's config and layers. A subject is not among them: an
// artifact does not keep the image it refers to.
func parseRefs(body []byte) []digest.Digest {
	var m struct {
		Manifests []oci.Descriptor `json:"manifests"`
		Config    *oci.Descriptor  `json:"config"`
		Layers    []oci.Descriptor `json:"layers"`
		// Docker's schema 1 manifests list their layers so.
		FSLayers []struct {
			BlobSum digest.Digest `json:"blobSum"`
		} `json:"fsLayers"`
	}
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	var refs []digest.Digest
	add := func(d digest.Digest) {
		if d.Validate() == nil {
			refs = append(refs, d)
		}
	}
	for _, d := range m.Manifests {
		add(d.Digest)
	}
	if m.Config != nil {
		add(m.Config.Digest)
	}
	for _, d := range m.Layers {
		add(d.Digest)
	}
	for _, l := range m.FSLayers {
		add(l.BlobSum)
	}
	return refs
}

// parseBase reads a manifest's org.opencontainers.image.base.digest
// annotation; "" when it has none, or an invalid one.
func parseBase(body []byte) digest.Digest {
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	d := digest.Digest(m.Annotations[ocispec.AnnotationBaseImageDigest])
	if d.Validate() != nil {
		return ""
	}
	return d
}

// walkManifests calls fn for m and every manifest it lists, each once.
func (cat *catalog) walkManifests(m *catManifest, fn func(*catManifest)) {
	seen := map[digest.Digest]bool{}
	var walk func(*catManifest)
	walk = func(m *catManifest) {
		if seen[m.digest] {
			return
		}
		seen[m.digest] = true
		fn(m)
		for _, r := range m.refs {
			if child := cat.manifests[r]; child != nil {
				walk(child)
			}
		}
	}
	walk(m)
}

// closure returns the blobs manifest d holds, itself included, with the
// manifests it references, each once.
func (cat *catalog) closure(d digest.Digest, into map[digest.Digest]bool) {
	if into[d] {
		return
	}
	into[d] = true
	if m := cat.manifests[d]; m != nil {
		for _, r := range m.refs {
			cat.closure(r, into)
		}
	}
}

// size is the bytes of the blobs in set that the store holds.
func (cat *catalog) size(set map[digest.Digest]bool) int64 {
	var n int64
	for d := range set {
		n += cat.blobs[d]
	}
	return n
}
