package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// WarmRequest asks for images to be fetched before their first pull.
type WarmRequest struct {
	Source Source
	Repo   string
	// Tag is a tag, or a pattern with * (1.27.*) matched against the
	// source's tag list; or Digest names one manifest.
	Tag    string
	Digest digest.Digest
	// Platforms are the platforms wanted of an index, as os/arch or
	// os/arch/variant; empty: all.
	Platforms []string
}

// WarmProgress is where the warm-up of one image stands.
type WarmProgress struct {
	Image       string        `json:"image"`
	Digest      digest.Digest `json:"digest,omitempty"`
	Manifests   int           `json:"manifests"`
	Layers      int           `json:"layers"` // configs and layers held, of LayersTotal
	LayersTotal int           `json:"layersTotal"`
	Bytes       int64         `json:"bytes"` // their bytes held, of BytesTotal
	BytesTotal  int64         `json:"bytesTotal"`
	Fetched     int64         `json:"fetched"` // the bytes downloaded for it
	Done        bool          `json:"done,omitempty"`
	Error       string        `json:"error,omitempty"`
}

// ErrSourceFailing: warm-up stops asking a source that failed lately or
// asked for a pause (a 429); the next run resumes.
var ErrSourceFailing = errors.New("upstream is failing or rate-limited; the next run resumes")

// warmBlobs is how many blobs of an image warm-up fetches at once.
const warmBlobs = 4

// Warm fetches the images q names (every tag that matches a pattern) and
// every blob of the platforms wanted, as pulls would, and calls progress
// as each image advances and once when it ends (Done set). Tags are
// revalidated with a HEAD, and only what the cache does not hold is
// downloaded, each blob once. It returns the first image's error, after
// trying the others.
func (c *Cache) Warm(ctx context.Context, q WarmRequest, progress func(WarmProgress)) error {
	refs := []string{q.Digest.String()}
	if q.Digest == "" {
		refs = []string{q.Tag}
		if strings.Contains(q.Tag, "*") {
			tags, err := c.matchingTags(ctx, q.Source, q.Repo, q.Tag)
			if err != nil {
				progress(WarmProgress{Image: q.Source.Name() + "/" + q.Repo + ":" + q.Tag, Done: true, Error: describeError(err)})
				return err
			}
			refs = tags
		}
	}
	var first error
	for _, ref := range refs {
		if _, err := c.warmImage(ctx, q, ref, progress); err != nil && first == nil {
			first = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return first
}

// warmImage warms one tag or digest of q's repository, and returns its
// manifest (an index, for a multi-platform image).
func (c *Cache) warmImage(ctx context.Context, q WarmRequest, ref string, progress func(WarmProgress)) (*Manifest, error) {
	w := &warming{p: WarmProgress{Image: q.Source.Name() + "/" + q.Repo + sep(ref) + ref}, report: progress}
	top, err := c.warmManifests(ctx, q, ref, w)
	w.update(func(p *WarmProgress) {
		p.Done = true
		if err != nil {
			p.Error = describeError(err)
		}
	})
	return top, err
}

// describeError is an error in words for a client: a source's failure
// without its addresses, when the error can say so.
func describeError(err error) string {
	var p interface {
		error
		Public() string
	}
	if errors.As(err, &p) {
		return p.Public()
	}
	return err.Error()
}

func sep(ref string) string {
	if strings.Contains(ref, ":") {
		return "@"
	}
	return ":"
}

// warming is one image's progress, reported as its blobs arrive in
// parallel.
type warming struct {
	mu     sync.Mutex // protects p and orders the reports
	p      WarmProgress
	report func(WarmProgress)
}

func (w *warming) update(change func(*WarmProgress)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	change(&w.p)
	w.report(w.p)
}

// warmManifests fetches what ref names, manifests first, then blobs; a
// tag's new record is stored last, once its image is whole, so that a
// warm-up cut short never leaves a tag on an image the store cannot serve.
func (c *Cache) warmManifests(ctx context.Context, q WarmRequest, ref string, w *warming) (*Manifest, error) {
	// The policy first: a denied image is fetched no part of, and a
	// freeze (which warms through here) is refused too. What the image
	// references by digest is of the same repository, which this permits.
	if err := c.permit(q.Source, q.Repo, ref); err != nil {
		return nil, err
	}
	if q.Source.Failing() {
		return nil, fmt.Errorf("%w: %s", ErrSourceFailing, q.Source.Name())
	}
	want := &Manifest{}
	commit := func() error { return nil }
	if d, err := digest.Parse(ref); err == nil {
		want.Digest = d
	} else {
		rec, store, err := c.warmTag(ctx, q.Source, q.Repo, ref)
		if err != nil {
			return nil, err
		}
		want, commit = &rec.Manifest, store
	}
	top, err := c.manifestByDigest(ctx, q.Source, q.Repo, want, false)
	if err != nil {
		return nil, err
	}
	images := []*Manifest{top}
	w.update(func(p *WarmProgress) { p.Digest, p.Manifests = top.Digest, 1 })
	if oci.IsIndex(top.MediaType) {
		images = nil
		children := platformManifests(top.Body, q.Platforms)
		if len(children) == 0 {
			return nil, fmt.Errorf("%w: no manifest of the index is for %s", oci.ErrNotFound, strings.Join(q.Platforms, ", "))
		}
		for _, d := range children {
			m, err := c.manifestByDigest(ctx, q.Source, q.Repo, &Manifest{Digest: d}, false)
			if err != nil {
				return nil, err
			}
			images = append(images, m)
			w.update(func(p *WarmProgress) { p.Manifests++ })
		}
	}
	blobs := map[digest.Digest]int64{}
	for _, m := range images {
		for _, d := range imageBlobs(m.Body) {
			blobs[d.Digest] = d.Size
		}
	}
	w.update(func(p *WarmProgress) {
		p.LayersTotal = len(blobs)
		for _, size := range blobs {
			p.BytesTotal += size
		}
	})
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(warmBlobs)
	for d, size := range blobs {
		g.Go(func() error {
			fetched, err := c.warmBlob(gctx, q.Source, q.Repo, d)
			if err != nil {
				return err
			}
			w.update(func(p *WarmProgress) {
				p.Layers++
				p.Bytes += size
				if fetched {
					p.Fetched += size
				}
			})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return top, commit()
}

// warmTag asks the source what a tag points to now, always (a HEAD), and
// returns its new record and a function that stores it. A frozen tag is
// not asked about; a failing source leaves the cached record.
func (c *Cache) warmTag(ctx context.Context, src Source, repo, tag string) (*tagRecord, func() error, error) {
	cached, _ := c.loadTag(ctx, src, tagKey(src.Name(), repo, tag))
	noop := func() error { return nil }
	if cached != nil && cached.Frozen {
		return cached, noop, nil
	}
	rec, _, stale, err := c.checkTag(ctx, src, repo, tag, cached, false)
	if err != nil || stale {
		return rec, noop, err
	}
	return rec, func() error {
		_, err := c.storeTag(ctx, src, repo, tag, rec, cached)
		return err
	}, nil
}

// warmBlob makes sure blob d is stored, and tells whether it was not
// (then it was fetched, by this fill or by one it joined).
func (c *Cache) warmBlob(ctx context.Context, src Source, repo string, d digest.Digest) (bool, error) {
	if _, err := c.store.Content.Stat(ctx, d); err == nil {
		c.pulled.touch(d, c.now())
		return false, nil
	}
	if src.Failing() {
		return false, fmt.Errorf("%w: %s", ErrSourceFailing, src.Name())
	}
	b, err := c.Blob(ctx, src, repo, d)
	if err != nil {
		return false, err
	}
	defer b.Close()
	if b.fill == nil {
		return true, nil // fetched by another fill meanwhile
	}
	return true, b.fill.wait(ctx)
}

// platformManifests lists the manifests of an index for the platforms
// wanted (os/arch, or os/arch/variant); with none wanted, all.
func platformManifests(body []byte, platforms []string) []digest.Digest {
	var index struct {
		Manifests []oci.Descriptor `json:"manifests"`
	}
	json.Unmarshal(body, &index)
	var out []digest.Digest
	for _, m := range index.Manifests {
		if m.Digest.Validate() != nil {
			continue
		}
		if len(platforms) == 0 {
			out = append(out, m.Digest)
			continue
		}
		for _, want := range platforms {
			if p := m.Platform; p != nil && platformMatches(want, p.OS, p.Architecture, p.Variant) {
				out = append(out, m.Digest)
				break
			}
		}
	}
	return out
}

// platformMatches tells whether os/arch[/variant] matches a platform; a
// wanted platform without variant matches every variant.
func platformMatches(want, os, arch, variant string) bool {
	parts := strings.Split(want, "/")
	if len(parts) < 2 || parts[0] != os || parts[1] != arch {
		return false
	}
	return len(parts) == 2 || parts[2] == variant
}

// imageBlobs lists an image manifest's config and layers, foreign layers
// (fetched from elsewhere) left out.
func imageBlobs(body []byte) []oci.Descriptor {
	var m struct {
		Config *oci.Descriptor  `json:"config"`
		Layers []oci.Descriptor `json:"layers"`
	}
	json.Unmarshal(body, &m)
	var out []oci.Descriptor
	if m.Config != nil && m.Config.Digest.Validate() == nil {
		out = append(out, *m.Config)
	}
	for _, l := range m.Layers {
		if len(l.URLs) == 0 && l.Digest.Validate() == nil {
			out = append(out, l)
		}
	}
	return out
}

// maxTagPages bounds the tag list pages read to expand a pattern.
const maxTagPages = 100

// matchingTags lists the source's tags of repo that match pattern and
// that the source's policy lets through: a pattern asks for what is
// approved of what it matches, so the tags denied are left out. When that
// leaves none, the error is the first tag's denial. A denied repository
// is refused before its tag list is asked for (by Tags).
func (c *Cache) matchingTags(ctx context.Context, src Source, repo, pattern string) ([]string, error) {
	name := src.Name() + "/" + repo
	var tags []string
	var denied error
	query := url.Values{"n": {"1000"}}
	for range maxTagPages {
		doc, err := c.Tags(ctx, src, repo, query)
		if err != nil {
			return nil, err
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(doc.Body, &page); err != nil {
			return nil, fmt.Errorf("%w: the tag list of %s: %v", oci.ErrInvalid, name, err)
		}
		for _, t := range page.Tags {
			if !oci.ValidTag(t) || !oci.MatchPattern(name+":"+pattern, name+":"+t) {
				continue
			}
			if err := c.permit(src, repo, t); err != nil {
				if denied == nil {
					denied = err
				}
				continue
			}
			tags = append(tags, t)
		}
		last := nextLast(doc.Link)
		if last == "" || len(page.Tags) == 0 {
			break
		}
		query = url.Values{"n": {"1000"}, "last": {last}}
	}
	switch {
	case len(tags) == 0 && denied != nil:
		return nil, denied
	case len(tags) == 0:
		return nil, fmt.Errorf("%w: no tag of %s matches %q", oci.ErrNotFound, name, pattern)
	case denied != nil:
		c.log.Debug("warm-up leaves out the tags the policy denies", "pattern", name+":"+pattern, "first", denied)
	}
	return tags, nil
}

// nextLast reads the last parameter of a tag list's Link to its next
// page: </v2/x/tags/list?last=b&n=2>; rel="next".
func nextLast(link string) string {
	start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
	if start < 0 || end < start {
		return ""
	}
	u, err := url.Parse(link[start+1 : end])
	if err != nil {
		return ""
	}
	return u.Query().Get("last")
}
