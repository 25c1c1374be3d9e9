package cache

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// Write-through: what a client pushes through the cache to a source that
// takes pushes is stored as it passes, so that the next pull of it needs
// no source request for content. The caller (package registry) forwards
// the push and calls these only once the source has accepted it.

// PushSpool returns a spool file for the bytes of a blob being pushed,
// committed by PushedBlob or discarded.
func (c *Cache) PushSpool(ctx context.Context) (store.SpoolFile, error) {
	return c.store.Spool.Create(ctx, "")
}

// PushedBlob stores blob d, which the source has accepted and whose bytes
// f holds, verified against d by the caller. It consumes f.
func (c *Cache) PushedBlob(ctx context.Context, d digest.Digest, f store.SpoolFile) error {
	if err := c.store.Content.Commit(ctx, d, f); err != nil {
		return err
	}
	c.pulled.touch(d, c.now())
	c.noteCommit()
	return nil
}

// PushedManifest stores manifest m, which the source has accepted for repo,
// and records tags as pointing to it, checked now: the next pull of them
// needs no revalidation within the TTL. A referrers answer of the manifest
// m names as its subject is dropped, to be asked again.
func (c *Cache) PushedManifest(ctx context.Context, src Source, repo string, tags []string, m *Manifest) error {
	if got := m.Digest.Algorithm().FromBytes(m.Body); got != m.Digest {
		return oci.ErrDigestMismatch
	}
	if m.MediaType == "" {
		m.MediaType = mediaTypeOf(m.Body)
	}
	if err := c.storeManifest(ctx, src, repo, m); err != nil {
		return err
	}
	for _, tag := range tags {
		key := tagKey(src.Name(), repo, tag)
		cached, _ := c.loadTag(ctx, src, key)
		rec := &tagRecord{Manifest: Manifest{Digest: m.Digest, MediaType: m.MediaType, Size: m.Size}, Checked: c.now()}
		if _, err := c.storeTag(ctx, src, repo, tag, rec, cached); err != nil {
			return err
		}
	}
	if subject := subjectOf(m.Body); subject != "" {
		key := repoKey(src.Name(), repo) + "/_referrers/" + string(subject.Algorithm()) + "/" + subject.Encoded()
		if err := c.store.Records.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// subjectOf is the digest of a manifest's subject, if it has one.
func subjectOf(body []byte) digest.Digest {
	var m struct {
		Subject *oci.Descriptor `json:"subject"`
	}
	if json.Unmarshal(body, &m) != nil || m.Subject == nil || m.Subject.Digest.Validate() != nil {
		return ""
	}
	return m.Subject.Digest
}

// StoredBlob opens stored blob d, for pushing it on to the source; nil
// when it is not stored.
func (c *Cache) StoredBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	r, size, err := c.store.Content.Open(ctx, d, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	return r, size, err
}

// StoredManifest returns stored manifest d, for pushing it on to the
// source; nil when it is not stored.
func (c *Cache) StoredManifest(ctx context.Context, d digest.Digest) (*Manifest, error) {
	m, err := c.storedManifest(ctx, d, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return m, err
}

// Refs lists what a manifest refers to: an index's manifests, an image's
// config and layers.
func Refs(body []byte) []digest.Digest { return parseRefs(body) }
