package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/opencontainers/go-digest"
)

// Document is an upstream answer the cache keeps for a TTL: a tag list
// page or a referrers index.
type Document struct {
	Body        []byte    `json:"body"`
	ContentType string    `json:"contentType"`
	Link        string    `json:"link,omitempty"` // the next page, as the upstream wrote it
	Checked     time.Time `json:"checked"`
}

// Tags returns a page of repo's tag list; query holds n and last.
func (c *Cache) Tags(ctx context.Context, up *Upstream, repo string, query url.Values) (*Document, error) {
	sum := sha256.Sum256([]byte(query.Encode()))
	key := repoKey(up.Name(), repo) + "/_taglists/" + hex.EncodeToString(sum[:8])
	return c.document(ctx, up, repo, "tags/list", query, key)
}

// Referrers returns the referrers index of manifest d, unfiltered.
func (c *Cache) Referrers(ctx context.Context, up *Upstream, repo string, d digest.Digest) (*Document, error) {
	key := repoKey(up.Name(), repo) + "/_referrers/" + string(d.Algorithm()) + "/" + d.Encoded()
	return c.document(ctx, up, repo, "referrers/"+d.String(), nil, key)
}

// document returns the stored document while fresh; otherwise one GET,
// shared by every client asking at once, with stale-if-error.
func (c *Cache) document(ctx context.Context, up *Upstream, repo, path string, query url.Values, key string) (*Document, error) {
	if doc, fresh := c.loadDocument(ctx, up, key); fresh {
		return doc, nil
	} else if doc != nil && c.isQuiet(up) {
		c.noteStale("upstream", up.Name(), "repo", repo, "path", path, "err", "failing lately")
		return doc, nil
	}
	v, err := c.flight(ctx, key, func(ctx context.Context) (any, error) {
		cached, fresh := c.loadDocument(ctx, up, key)
		if fresh {
			return cached, nil
		}
		doc, err := c.fetchDocument(ctx, up, repo, path, query)
		if err != nil {
			return staleOr(c, up, cached, err, "repo", repo, "path", path)
		}
		return doc, c.putJSON(ctx, key, doc)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Document), nil
}

// loadDocument returns a stored document, if any, and whether it is within
// its TTL.
func (c *Cache) loadDocument(ctx context.Context, up *Upstream, key string) (doc *Document, fresh bool) {
	doc = new(Document)
	if err := c.getJSON(ctx, key, doc); err != nil {
		return nil, false
	}
	return doc, c.now().Sub(doc.Checked) < up.TTL
}

func (c *Cache) fetchDocument(ctx context.Context, up *Upstream, repo, path string, query url.Values) (*Document, error) {
	resp, err := up.Do(ctx, http.MethodGet, repo, path, query, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("upstream %q: reading %s: %w", up.Name(), path, err)
	}
	if len(body) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: upstream %q: %s is over %d bytes", ErrTooLarge, up.Name(), path, MaxDocumentSize)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("%w: upstream %q: %s is not JSON", ErrBadUpstream, up.Name(), path)
	}
	return &Document{
		Body:        body,
		ContentType: resp.Header.Get("Content-Type"),
		Link:        resp.Header.Get("Link"),
		Checked:     c.now(),
	}, nil
}

// Record keys. Repository names and tags are validated by package route;
// "_tags" and the like cannot be repository components (those start with a
// letter or digit), so a repository's records never collide with a deeper
// repository's.
func repoKey(upstream, repo string) string { return "repos/" + upstream + "/" + repo }

func tagKey(upstream, repo, tag string) string { return repoKey(upstream, repo) + "/_tags/" + tag }

func manifestKey(d digest.Digest) string {
	return "manifests/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func (c *Cache) getJSON(ctx context.Context, key string, v any) error {
	b, err := c.store.Get(ctx, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (c *Cache) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.store.Put(ctx, key, b)
}
