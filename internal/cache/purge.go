package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// Purge drops what the cache holds for a repository of src (tag and d
// empty), one tag of it, or one manifest or blob by digest: the tags, the
// manifests, and the blobs nothing else needs, for a poisoned or unwanted
// image. The next pull fetches afresh. A manifest purged by digest goes
// even where other repositories or indexes list it. It returns an error
// that wraps oci.ErrNotFound when the cache holds nothing of it.
func (c *Cache) Purge(ctx context.Context, source, repo, tag string, d digest.Digest) (Removed, error) {
	c.sweepMu.Lock()
	defer c.sweepMu.Unlock()
	cat, err := c.readCatalog(ctx)
	if err != nil {
		return Removed{}, err
	}
	s := c.newSweep(cat, c.now())
	s.force = true
	name := repoName{source, repo}
	var others []string // a repository's other records
	switch {
	case d != "":
		err = s.purgeDigest(d)
	case tag != "":
		s.purgeTags(func(t *catTag) bool { return t.repoName == name && t.tag == tag })
	default:
		others, err = s.purgeRepo(ctx, name)
	}
	if err == nil {
		err = s.commit(ctx)
	}
	for _, key := range others {
		if err != nil {
			break
		}
		if err = c.store.Records.Delete(ctx, key); err == nil {
			c.memo.forget(key)
		}
	}
	if err == nil && s.removed == (Removed{}) {
		err = fmt.Errorf("%w: the cache holds nothing of %s", oci.ErrNotFound, describe(name, tag, d))
	}
	if s.removed != (Removed{}) {
		c.log.Info("purged", "image", describe(name, tag, d), "tags", s.removed.Tags,
			"manifests", s.removed.Manifests, "blobs", s.removed.Blobs, "bytes", s.removed.Bytes)
	}
	return s.removed, err
}

func describe(name repoName, tag string, d digest.Digest) string {
	switch {
	case d != "":
		return name.String() + "@" + d.String()
	case tag != "":
		return name.String() + ":" + tag
	}
	return name.String()
}

// purgeTags plans the removal of the tags that match, and of the
// manifests they pointed to that nothing else needs.
func (s *sweep) purgeTags(match func(*catTag) bool) {
	var targets []digest.Digest
	for _, t := range s.cat.tags {
		if match(t) {
			s.tag(t)
			targets = append(targets, t.digest)
		}
	}
	for _, d := range targets {
		if m := s.cat.manifests[d]; m != nil && len(m.tags) == 0 && m.parents == 0 {
			s.manifest(m, "")
		}
	}
}

// purgeDigest plans the removal of manifest d with every tag that points
// to it, or of blob d, unless cached manifests list it (they would no
// longer be whole).
func (s *sweep) purgeDigest(d digest.Digest) error {
	m := s.cat.manifests[d]
	if m == nil {
		if n := s.listers[d]; n > 0 {
			return fmt.Errorf("%w: blob %s is listed by %d cached manifests; purge their images instead", ErrListed, d, n)
		}
		s.blob(d, "")
		return nil
	}
	for _, t := range append([]*catTag(nil), m.tags...) {
		s.tag(t)
	}
	s.manifest(m, "")
	return nil
}

// ErrListed: a blob cannot be purged on its own while cached manifests
// list it.
var ErrListed = errors.New("blob in use by cached images")

// purgeRepo plans the removal of a repository's tags and of the manifests
// fetched for it that nothing else needs; it returns the repository's
// other records (tag lists, referrers, links of manifests that stay), to
// be removed after.
func (s *sweep) purgeRepo(ctx context.Context, name repoName) ([]string, error) {
	s.purgeTags(func(t *catTag) bool { return t.repoName == name })
	for _, m := range s.cat.manifests {
		if containsRepo(m.repos, name) && len(m.tags) == 0 && m.parents == 0 && len(m.repos) == 1 {
			s.manifest(m, "")
		}
	}
	prefix := repoKey(name.source, name.repo)
	var keys []string
	err := s.c.store.Records.Walk(ctx, prefix, func(key string) error {
		// Only this repository's records: theirs start with _, a
		// deeper repository's with a letter or digit.
		if strings.HasPrefix(key, prefix+"/_") {
			keys = append(keys, key)
		}
		return nil
	})
	return keys, err
}

func containsRepo(repos []repoName, name repoName) bool {
	for _, r := range repos {
		if r == name {
			return true
		}
	}
	return false
}
