package cache

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// Repository is what the cache holds of one repository.
type Repository struct {
	Source     string  `json:"source"`
	Repository string  `json:"repository"`
	Tags       []Image `json:"tags"`
	// Untagged are the manifests fetched by digest that no tag points to.
	Untagged []Image `json:"untagged,omitempty"`
}

// Image is a cached tag or manifest.
type Image struct {
	Tag       string        `json:"tag,omitempty"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType,omitempty"`
	// Size is the bytes the store holds of the image: the manifest, an
	// index's manifests, the configs and layers.
	Size int64 `json:"size"`
	// Held tells whether the manifest itself is stored (a tag may point
	// to a manifest evicted since, or not fetched yet), and Missing how
	// many of the blobs it lists are not (fetched on their first pull).
	Held    bool `json:"held"`
	Missing int  `json:"missing,omitempty"`
	// LastPulled is when the image was last pulled; zero when not known
	// (stored since the last flush of the pull times).
	LastPulled time.Time `json:"lastPulled,omitzero"`
	Pinned     bool      `json:"pinned,omitempty"`
	Frozen     bool      `json:"frozen,omitempty"`
	// Base is the image it was built from, as its manifest says
	// (org.opencontainers.image.base.digest): derived images have it.
	Base digest.Digest `json:"base,omitempty"`
}

// List returns the repositories the cache holds, by source and name; with
// a filter (source/repository, or a pattern of oci.MatchPattern), only
// those it names.
func (c *Cache) List(ctx context.Context, filter string) ([]Repository, error) {
	cat, err := c.readCatalog(ctx)
	if err != nil {
		return nil, err
	}
	repos := map[repoName]*Repository{}
	get := func(n repoName) *Repository {
		r := repos[n]
		if r == nil {
			r = &Repository{Source: n.source, Repository: n.repo, Tags: []Image{}}
			repos[n] = r
		}
		return r
	}
	image := func(d digest.Digest) Image {
		img := Image{Digest: d}
		if m := cat.manifests[d]; m != nil {
			held := map[digest.Digest]bool{}
			cat.closure(d, held)
			img.MediaType, img.Size, img.Held, img.Pinned, img.Base = m.mediaType, cat.size(held), true, c.pinned(m), m.base
			for b := range held {
				if _, ok := cat.blobs[b]; !ok {
					img.Missing++
				}
			}
			if t, ok := c.pulled.last(d); ok {
				img.LastPulled = t
			}
		}
		return img
	}
	keep := func(n repoName) bool {
		return filter == "" || filter == n.String() || strings.ContainsRune(filter, '*') && oci.MatchPattern(filter, n.String())
	}
	for _, t := range cat.tags {
		if !keep(t.repoName) {
			continue
		}
		img := image(t.digest)
		img.Tag, img.Frozen = t.tag, t.frozen
		img.Pinned = img.Pinned || t.frozen
		r := get(t.repoName)
		r.Tags = append(r.Tags, img)
	}
	for d, m := range cat.manifests {
		if len(m.tags) > 0 || m.parents > 0 {
			continue
		}
		for _, n := range m.repos {
			if keep(n) {
				r := get(n)
				r.Untagged = append(r.Untagged, image(d))
			}
		}
	}
	out := make([]Repository, 0, len(repos))
	for _, r := range repos {
		slices.SortFunc(r.Tags, func(a, b Image) int { return strings.Compare(a.Tag, b.Tag) })
		slices.SortFunc(r.Untagged, func(a, b Image) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Repository) int {
		return strings.Compare(a.Source+"/"+a.Repository, b.Source+"/"+b.Repository)
	})
	return out, nil
}
