package derive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
)

// SourceName is the name derived images are served under:
// <cache>/derived/<name>:<tag>.
const SourceName = "derived"

// maxConfig bounds a base's config blob, read into memory to derive from.
const maxConfig = 8 << 20

// keptBuilds is how many builds of each derived image keep their documents
// in memory, so that a client that resolved the previous build while the
// base moved still gets its manifests; the cache stores what it serves, so
// this matters only for documents never pulled yet.
const keptBuilds = 4

// Base is a Spec with the base it derives from, resolved against the
// configured upstreams.
type Base struct {
	Spec Spec
	// Source is the base's upstream, Repo the repository on it, and Tag
	// or Digest the base's reference (Tag wins when both are set).
	Source cache.Source
	Repo   string
	Tag    string
	Digest digest.Digest
}

// Source serves the configured derived images as a registry: a
// cache.Source named "derived" whose repositories are the Specs' names, so
// that the cache stores, revalidates and serves them as it does any
// upstream's. A derived image is built from its base, which is read
// through the cache from the base's upstream (and so stored, shared with
// direct pulls of the base, and subject to its policy); it is built again
// when the base's tag moves, on the derived tag's revalidation. The base's
// layers are never copied: the derived manifests list them, and a blob
// request for one goes to the base's upstream.
type Source struct {
	// Built, when set, is told of every build, after it; the audit trail
	// records them. Set it before serving.
	Built func(Status)

	cache  *cache.Cache
	log    *slog.Logger
	ttl    time.Duration
	images map[string]*image // by Spec.Name; read-only after NewSource
}

var _ cache.Source = (*Source)(nil)

// image is one derived image and what its builds made.
type image struct {
	Base
	tag string // what the derived image is published as

	buildMu sync.Mutex // one build at a time
	mu      sync.Mutex // protects builds
	builds  []*build   // the latest keptBuilds, newest last
}

// build is what one build made from one base manifest.
type build struct {
	when time.Time     // when it was built
	base digest.Digest // the base manifest it was built from
	top  digest.Digest // the derived manifest (or index)
	docs map[digest.Digest]doc
	// layers are the base's blobs the derived manifests list, which are
	// fetched from the base's upstream.
	layers map[digest.Digest]bool
}

// doc is a manifest or a blob a build made.
type doc struct {
	manifest  bool
	mediaType string
	body      []byte
}

// NewSource returns the source of bases, reading them through c. Its TTL
// is the least of the bases' sources, so that a derived tag is checked as
// often as its base's.
func NewSource(c *cache.Cache, bases []Base, log *slog.Logger) *Source {
	s := &Source{cache: c, log: log, images: map[string]*image{}}
	for i, b := range bases {
		s.images[b.Spec.Name] = &image{Base: b, tag: b.Spec.DerivedTag()}
		if ttl := b.Source.TTL(); i == 0 || ttl < s.ttl {
			s.ttl = ttl
		}
	}
	return s
}

// Name is SourceName.
func (s *Source) Name() string { return SourceName }

// TTL is how long a derived tag stays fresh: its base's TTL.
func (s *Source) TTL() time.Duration { return s.ttl }

// Failing is false: a base that fails is covered by the cache's copy of
// the base, and a build that fails by the cache's copy of the derived
// image.
func (s *Source) Failing() bool { return false }

// Resolve returns the derived manifest a tag or digest names.
func (s *Source) Resolve(ctx context.Context, repo, ref string) (oci.Descriptor, error) {
	_, d, doc, err := s.find(ctx, repo, ref, true)
	if err != nil {
		return oci.Descriptor{}, err
	}
	return oci.Descriptor{Digest: d, MediaType: doc.mediaType, Size: int64(len(doc.body))}, nil
}

// Manifest returns the derived manifest a tag or digest names.
func (s *Source) Manifest(ctx context.Context, repo, ref string) ([]byte, oci.Descriptor, error) {
	_, d, doc, err := s.find(ctx, repo, ref, true)
	if err != nil {
		return nil, oci.Descriptor{}, err
	}
	return doc.body, oci.Descriptor{Digest: d, MediaType: doc.mediaType, Size: int64(len(doc.body))}, nil
}

// StatBlob returns the size of a blob a derived image lists: a config or
// extra layer it made, or a base blob, which the base's upstream tells.
func (s *Source) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	img, _, doc, err := s.find(ctx, repo, d.String(), false)
	if err != nil {
		return 0, err
	}
	if doc == nil {
		return img.Source.StatBlob(ctx, img.Repo, d)
	}
	return int64(len(doc.body)), nil
}

// OpenBlob returns a blob a derived image lists from offset off: one it
// made from memory, a base blob from the base's upstream.
func (s *Source) OpenBlob(ctx context.Context, repo string, d digest.Digest, off int64) (io.ReadCloser, int64, error) {
	img, _, doc, err := s.find(ctx, repo, d.String(), false)
	if err != nil {
		return nil, 0, err
	}
	if doc == nil {
		return img.Source.OpenBlob(ctx, img.Repo, d, off)
	}
	if off > int64(len(doc.body)) {
		off = int64(len(doc.body))
	}
	return io.NopCloser(bytes.NewReader(doc.body[off:])), int64(len(doc.body)) - off, nil
}

// Tags lists the derived image's one tag.
func (s *Source) Tags(ctx context.Context, repo string, _ url.Values) ([]byte, string, error) {
	img, err := s.image(repo)
	if err != nil {
		return nil, "", err
	}
	body, err := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{SourceName + "/" + repo, []string{img.tag}})
	return body, "", err
}

// Referrers: a derived image has none (its base's are about the base).
func (s *Source) Referrers(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	if _, err := s.image(repo); err != nil {
		return nil, err
	}
	return json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: oci.MediaTypeImageIndex, Manifests: []v1.Descriptor{}})
}

// Status is what a derived image is now, for the dashboard.
type Status struct {
	Name string `json:"name"` // served as derived/<Name>:<Tag>
	Tag  string `json:"tag"`
	From string `json:"from"`
	// Digest is the latest build's, built from the base manifest
	// BaseDigest at Built; all three are zero before the first pull.
	Digest     digest.Digest `json:"digest,omitempty"`
	BaseDigest digest.Digest `json:"base_digest,omitempty"`
	Built      time.Time     `json:"built,omitzero"`
}

// Images returns every configured derived image's status, by name.
func (s *Source) Images() []Status {
	out := make([]Status, 0, len(s.images))
	for _, img := range s.images {
		st := Status{Name: img.Spec.Name, Tag: img.tag, From: img.Spec.From}
		if b := img.latest(); b != nil {
			st.Digest, st.BaseDigest, st.Built = b.top, b.base, b.when
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// image returns the derived image named repo.
func (s *Source) image(repo string) (*image, error) {
	img := s.images[repo]
	if img == nil {
		return nil, fmt.Errorf("%w: no derived image %q is configured", oci.ErrNotFound, repo)
	}
	return img, nil
}

// find looks up what ref names in derived image repo: for a tag, the
// derived manifest built from the base the base's tag points to now; for
// a digest, a document of a recent build, else of a build from the base
// as it is now. A digest of a base blob the derived image lists gives a
// nil doc and no error. manifest tells which of manifests and blobs to
// look among.
func (s *Source) find(ctx context.Context, repo, ref string, manifest bool) (*image, digest.Digest, *doc, error) {
	img, err := s.image(repo)
	if err != nil {
		return nil, "", nil, err
	}
	if !strings.Contains(ref, ":") {
		if ref != img.tag {
			return nil, "", nil, fmt.Errorf("%w: derived image %q is published as tag %q only, not %q", oci.ErrNotFound, repo, img.tag, ref)
		}
		b, err := s.current(ctx, img)
		if err != nil {
			return nil, "", nil, err
		}
		top := b.docs[b.top]
		return img, b.top, &top, nil
	}
	d := digest.Digest(ref)
	doc, base, ok := img.lookup(d, manifest)
	if !ok {
		// Not of a recent build: perhaps of the base as it is now.
		if _, err := s.current(ctx, img); err != nil {
			return nil, "", nil, err
		}
		doc, base, ok = img.lookup(d, manifest)
	}
	switch {
	case ok && base:
		return img, d, nil, nil
	case ok:
		return img, d, &doc, nil
	}
	return nil, "", nil, fmt.Errorf("%w: derived image %q has no %s %s", oci.ErrNotFound, repo, map[bool]string{true: "manifest", false: "blob"}[manifest], d)
}

// lookup finds d among the documents of img's builds, newest first, or,
// for a blob, among the base blobs they list (base: true).
func (img *image) lookup(d digest.Digest, manifest bool) (_ doc, base, ok bool) {
	img.mu.Lock()
	defer img.mu.Unlock()
	for _, b := range slices.Backward(img.builds) {
		if doc, found := b.docs[d]; found && doc.manifest == manifest {
			return doc, false, true
		}
		if !manifest && b.layers[d] {
			return doc{}, true, true
		}
	}
	return doc{}, false, false
}

// latest is the newest build, or nil.
func (img *image) latest() *build {
	img.mu.Lock()
	defer img.mu.Unlock()
	if len(img.builds) == 0 {
		return nil
	}
	return img.builds[len(img.builds)-1]
}

// current returns the build from the base as its reference resolves now
// (through the cache: a tag is revalidated per its TTL), building it if
// the base changed since the last build.
func (s *Source) current(ctx context.Context, img *image) (*build, error) {
	base, err := s.cache.Manifest(ctx, cache.ManifestRequest{Source: img.Source, Repo: img.Repo, Tag: img.Tag, Digest: img.Digest, NoPrefetch: true})
	if err != nil {
		return nil, fmt.Errorf("derive[%s]: base %s: %w", img.Spec.Name, img.Spec.From, err)
	}
	img.buildMu.Lock()
	defer img.buildMu.Unlock()
	if b := img.latest(); b != nil && b.base == base.Digest {
		return b, nil
	}
	b, err := s.build(ctx, img, base)
	if err != nil {
		return nil, err
	}
	img.mu.Lock()
	img.builds = append(img.builds, b)
	if len(img.builds) > keptBuilds {
		img.builds = slices.Delete(img.builds, 0, len(img.builds)-keptBuilds)
	}
	img.mu.Unlock()
	s.log.Info("derived image built", "name", img.Spec.Name, "tag", img.tag, "digest", b.top,
		"base", img.Spec.From, "base_digest", base.Digest)
	if s.Built != nil {
		s.Built(Status{Name: img.Spec.Name, Tag: img.tag, From: img.Spec.From, Digest: b.top, BaseDigest: b.base, Built: b.when})
	}
	return b, nil
}

// build derives img from the base manifest m.
func (s *Source) build(ctx context.Context, img *image, m *cache.Manifest) (*build, error) {
	baseDigest, err := v1.NewHash(m.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("derive[%s]: base digest: %w", img.Spec.Name, err)
	}
	b := &build{when: time.Now(), base: m.Digest, docs: map[digest.Digest]doc{}, layers: map[digest.Digest]bool{}}
	if !oci.IsIndex(m.MediaType) {
		base, err := s.baseImage(ctx, img, m)
		if err != nil {
			return nil, err
		}
		out, err := Image(base, img.Spec, baseDigest)
		if err != nil {
			return nil, err
		}
		b.top, err = b.addImage(out, len(img.Spec.Files) > 0)
		return b, err
	}
	idx := &rawIndex{manifest: m.Body, mediaType: types.MediaType(m.MediaType), image: func(h v1.Hash) (v1.Image, error) {
		child, err := s.cache.Manifest(ctx, cache.ManifestRequest{Source: img.Source, Repo: img.Repo, Digest: digest.Digest(h.String()), NoPrefetch: true})
		if err != nil {
			return nil, err
		}
		return s.baseImage(ctx, img, child)
	}}
	out, err := Index(idx, img.Spec, baseDigest)
	if err != nil {
		return nil, err
	}
	return b, b.addIndex(out, len(img.Spec.Files) > 0)
}

// baseImage reads a base image manifest's config through the cache.
func (s *Source) baseImage(ctx context.Context, img *image, m *cache.Manifest) (v1.Image, error) {
	man, err := v1.ParseManifest(bytes.NewReader(m.Body))
	if err != nil {
		return nil, fmt.Errorf("derive[%s]: base manifest %s: %w", img.Spec.Name, m.Digest, err)
	}
	if man.Config.Size > maxConfig {
		return nil, fmt.Errorf("derive[%s]: base config %s: %d bytes, more than the %d read to derive", img.Spec.Name, man.Config.Digest, man.Config.Size, maxConfig)
	}
	d := digest.Digest(man.Config.Digest.String())
	blob, err := s.cache.Blob(ctx, img.Source, img.Repo, d)
	if err != nil {
		return nil, fmt.Errorf("derive[%s]: base config %s: %w", img.Spec.Name, d, err)
	}
	defer blob.Close()
	var config bytes.Buffer
	if err := blob.Copy(ctx, &config, 0, man.Config.Size); err != nil {
		return nil, fmt.Errorf("derive[%s]: base config %s: %w", img.Spec.Name, d, err)
	}
	// The cache verified the blob against d; its size is the descriptor's
	// by Copy's bound, and the digest cannot hold for a shorter one.
	if d.Algorithm().FromBytes(config.Bytes()) != d {
		return nil, fmt.Errorf("derive[%s]: base config %s: %w", img.Spec.Name, d, oci.ErrDigestMismatch)
	}
	return newRawImage(m.Body, config.Bytes(), m.MediaType)
}

// addImage records a derived image's manifest, config and extra layer
// (the last layer, when extra), and the base layers it lists; it returns
// the manifest's digest.
func (b *build) addImage(out v1.Image, extra bool) (digest.Digest, error) {
	raw, err := out.RawManifest()
	if err != nil {
		return "", err
	}
	mt, err := out.MediaType()
	if err != nil {
		return "", err
	}
	man, err := out.Manifest()
	if err != nil {
		return "", err
	}
	config, err := out.RawConfigFile()
	if err != nil {
		return "", err
	}
	d := digest.FromBytes(raw)
	b.docs[d] = doc{manifest: true, mediaType: string(mt), body: raw}
	b.docs[digest.FromBytes(config)] = doc{mediaType: string(man.Config.MediaType), body: config}
	for i, l := range man.Layers {
		ld := digest.Digest(l.Digest.String())
		if !extra || i < len(man.Layers)-1 {
			b.layers[ld] = true
			continue
		}
		layer, err := out.LayerByDigest(l.Digest)
		if err != nil {
			return "", err
		}
		rc, err := layer.Compressed()
		if err != nil {
			return "", err
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return "", err
		}
		b.docs[ld] = doc{mediaType: string(l.MediaType), body: body}
	}
	return d, nil
}

// addIndex records a derived index and each of its images.
func (b *build) addIndex(out v1.ImageIndex, extra bool) error {
	raw, err := out.RawManifest()
	if err != nil {
		return err
	}
	mt, err := out.MediaType()
	if err != nil {
		return err
	}
	im, err := out.IndexManifest()
	if err != nil {
		return err
	}
	for _, desc := range im.Manifests {
		child, err := out.Image(desc.Digest)
		if err != nil {
			return err
		}
		if _, err := b.addImage(child, extra); err != nil {
			return err
		}
	}
	b.top = digest.FromBytes(raw)
	b.docs[b.top] = doc{manifest: true, mediaType: string(mt), body: raw}
	return nil
}

var _ cache.RangeSource = (*Source)(nil)

// OpenHead opens a blob a derived image lists, asking for its first n
// bytes: a base blob in parts, as the base's upstream serves them, when
// it serves ranges; a blob this source made, whole.
func (s *Source) OpenHead(ctx context.Context, repo string, d digest.Digest, n int64) (io.ReadCloser, int64, int64, error) {
	img, _, doc, err := s.find(ctx, repo, d.String(), false)
	if err != nil {
		return nil, 0, 0, err
	}
	if rs, ok := img.Source.(cache.RangeSource); ok && doc == nil {
		return rs.OpenHead(ctx, img.Repo, d, n)
	}
	body, size, err := s.OpenBlob(ctx, repo, d, 0)
	return body, size, size, err
}

// OpenRange returns bytes [off, end) of a blob a derived image lists.
func (s *Source) OpenRange(ctx context.Context, repo string, d digest.Digest, off, end int64) (io.ReadCloser, error) {
	img, _, doc, err := s.find(ctx, repo, d.String(), false)
	if err != nil {
		return nil, err
	}
	if doc != nil {
		if off < 0 || end > int64(len(doc.body)) || off > end {
			return nil, fmt.Errorf("derive: bytes %d-%d of a %d-byte blob: %w", off, end-1, len(doc.body), oci.ErrInvalid)
		}
		return io.NopCloser(bytes.NewReader(doc.body[off:end])), nil
	}
	rs, ok := img.Source.(cache.RangeSource)
	if !ok {
		return nil, fmt.Errorf("derive: the base's upstream %q serves no ranges: %w", img.Source.Name(), oci.ErrUnsupported)
	}
	return rs.OpenRange(ctx, img.Repo, d, off, end)
}
