package cache_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// total counts every call the source got.
func (s *memSource) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.calls {
		n += v
	}
	return n
}

// ask sends src one request of kind through c for library/<repo>: a
// manifest by tag (ref a tag) or by digest, a blob, its HEAD, the tag
// list, or referrers.
func ask(c *cache.Cache, src cache.Source, kind, repo, ref string) error {
	ctx := context.Background()
	repo = "library/" + repo
	d := digest.Digest(ref)
	var err error
	switch kind {
	case "manifest":
		q := cache.ManifestRequest{Source: src, Repo: repo, Tag: ref}
		if strings.Contains(ref, ":") {
			q.Tag, q.Digest = "", d
		}
		_, err = c.Manifest(ctx, q)
	case "manifest HEAD":
		_, err = c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: repo, Tag: ref, Head: true})
	case "blob":
		var b *cache.Blob
		if b, err = c.Blob(ctx, src, repo, d); err == nil {
			b.Close()
		}
	case "blob HEAD":
		_, err = c.StatBlob(ctx, src, repo, d)
	case "tags":
		_, err = c.Tags(ctx, src, repo, url.Values{})
	case "referrers":
		_, err = c.Referrers(ctx, src, repo, d)
	}
	return err
}

// The rules, through the cache's entry points: deny wins, approved_only
// serves only allow's matches, a tag pattern applies to tags while what
// names no tag is judged by its repository.
func TestImagePolicyRules(t *testing.T) {
	dgst := digest.FromString("x").String()
	nodeOnly20 := cache.ImagePolicy{ApprovedOnly: true, Allow: []string{"library/node:20*", "library/nginx", "library/team/*"}, Deny: []string{"library/node:20.0*", "library/nginx:evil"}}
	denyTags := cache.ImagePolicy{Deny: []string{"library/node:18*", "library/bad*"}}
	for _, tc := range []struct {
		name   string
		policy cache.ImagePolicy
		kind   string
		repo   string
		ref    string
		want   string // "": served (here: the source's not found); else the denial
	}{
		{"no policy", cache.ImagePolicy{}, "manifest", "node", "18", ""},
		{"allowed tag", nodeOnly20, "manifest", "node", "20.11-alpine", ""},
		{"allowed tag, HEAD", nodeOnly20, "manifest HEAD", "node", "20", ""},
		{"tag outside allow", nodeOnly20, "manifest", "node", "18",
			`docker.io/library/node:18 is not approved: upstreams[docker.io].approved_only is set and no allow pattern matches`},
		{"tag outside allow, HEAD", nodeOnly20, "manifest HEAD", "node", "18", "is not approved"},
		{"deny wins over allow", nodeOnly20, "manifest", "node", "20.0.1",
			`docker.io/library/node:20.0.1 is denied by upstreams[docker.io].deny "library/node:20.0*"`},
		{"deny of a tag of an allowed repository", nodeOnly20, "manifest", "nginx", "evil", `deny "library/nginx:evil"`},
		{"other tags of that repository", nodeOnly20, "manifest", "nginx", "1.27", ""},
		{"repository outside allow", nodeOnly20, "manifest", "redis", "7", "is not approved"},
		{"typo of an allowed repository", nodeOnly20, "manifest", "ngnix", "latest", "is not approved"},
		{"star spans slashes", nodeOnly20, "manifest", "team/a/b", "1", ""},
		{"star does not reach into the tag", cache.ImagePolicy{ApprovedOnly: true, Allow: []string{"library/*-ok"}}, "manifest", "evil", "x-ok", "is not approved"},
		{"by digest: the repository of a tag pattern", nodeOnly20, "manifest", "node", dgst, ""},
		{"by digest: outside allow", nodeOnly20, "manifest", "redis", dgst,
			"docker.io/library/redis@" + dgst + " is not approved"},
		{"blob of an allowed repository", nodeOnly20, "blob", "node", dgst, ""},
		{"blob outside allow", nodeOnly20, "blob", "redis", dgst, "is not approved"},
		{"blob HEAD outside allow", nodeOnly20, "blob HEAD", "redis", dgst, "is not approved"},
		{"tag list of an allowed repository", nodeOnly20, "tags", "node", "", "<no error>"},
		{"tag list outside allow", nodeOnly20, "tags", "redis", "", "docker.io/library/redis is not approved"},
		{"referrers outside allow", nodeOnly20, "referrers", "redis", dgst, "is not approved"},
		{"deny of tags leaves digests", denyTags, "manifest", "node", dgst, ""},
		{"deny of tags leaves the tag list", denyTags, "tags", "node", "", "<no error>"},
		{"deny of tags", denyTags, "manifest", "node", "18.1", `deny "library/node:18*"`},
		{"deny of a repository: by tag", denyTags, "manifest", "bad-thing", "1", `deny "library/bad*"`},
		{"deny of a repository: by digest", denyTags, "manifest", "bad", dgst, `deny "library/bad*"`},
		{"deny of a repository: blob", denyTags, "blob", "bad", dgst, `deny "library/bad*"`},
		{"deny of a repository: tag list", denyTags, "tags", "bad", "", `docker.io/library/bad is denied by upstreams[docker.io].deny "library/bad*"`},
		{"deny of a repository: referrers", denyTags, "referrers", "bad", dgst, `deny "library/bad*"`},
		{"approved_only with nothing allowed", cache.ImagePolicy{ApprovedOnly: true}, "manifest", "node", "20",
			"docker.io/library/node:20 is not approved: upstreams[docker.io].approved_only is set and allow is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource()
			c := newTestCache(t, newStore(t), cache.Options{Policies: map[string]cache.ImagePolicy{"docker.io": tc.policy}})
			err := ask(c, src, tc.kind, tc.repo, tc.ref)
			var de *cache.DeniedError
			switch {
			case tc.want == "" && !errors.Is(err, oci.ErrNotFound):
				t.Fatalf("err = %v, want the source's not found", err)
			case tc.want == "<no error>" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tc.want == "" || tc.want == "<no error>":
				if src.total() == 0 {
					t.Fatal("served without asking the source")
				}
			case !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("err = %v, want a denial with %q", err, tc.want)
			case src.total() != 0:
				t.Fatalf("a denied request reached the source: %v", src.calls)
			}
		})
	}
}

// Another source's policy is its own: docker.io's deny leaves ghcr.io
// alone.
func TestImagePolicyIsPerSource(t *testing.T) {
	src := newSource()
	c := newTestCache(t, newStore(t), cache.Options{Policies: map[string]cache.ImagePolicy{"ghcr.io": {ApprovedOnly: true}}})
	if err := ask(c, src, "manifest", "x", "1"); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("docker.io under ghcr.io's policy: %v", err)
	}
}

// What the store holds stops being served once denied: a second cache over
// the same store, with a policy, refuses every part of an image the first
// one cached, and asks the source nothing; an image it allows is served.
func TestNewlyDeniedImageStopsBeingServed(t *testing.T) {
	src := newSource()
	img := addImage(src, "1", randomBytes(1024))
	addImage(src, "2", randomBytes(1024))
	st := newStore(t)
	before := newTestCache(t, st, cache.Options{})
	for _, tag := range []string{"1", "2"} {
		if err := pull(t, before, src, tag); err != nil {
			t.Fatal(err)
		}
	}
	waitFills(t, before)
	if !held(t, st, img) {
		t.Fatal("the image is not stored")
	}
	after := newTestCache(t, st, cache.Options{Policies: map[string]cache.ImagePolicy{"docker.io": {Deny: []string{"library/x:1"}}}})
	calls := src.total()
	if err := pull(t, after, src, "1"); !errors.As(err, new(*cache.DeniedError)) {
		t.Fatalf("pull of the denied tag: %v", err)
	}
	// By digest the repository is judged: deny it whole.
	after = newTestCache(t, st, cache.Options{Policies: map[string]cache.ImagePolicy{"docker.io": {Deny: []string{"library/x"}}}})
	for _, kind := range []string{"manifest", "blob", "blob HEAD", "referrers"} {
		ref := img.blobs[1].String()
		if kind == "manifest" || kind == "referrers" {
			ref = img.digest.String()
		}
		if err := ask(after, src, kind, "x", ref); !errors.As(err, new(*cache.DeniedError)) {
			t.Fatalf("%s of a stored image now denied: %v", kind, err)
		}
	}
	if src.total() != calls {
		t.Fatalf("denied requests reached the source: %d calls", src.total()-calls)
	}
	allowed := newTestCache(t, st, cache.Options{Policies: map[string]cache.ImagePolicy{"docker.io": {ApprovedOnly: true, Allow: []string{"library/x:2"}}}})
	if err := pull(t, allowed, src, "2"); err != nil {
		t.Fatalf("pull of the allowed tag: %v", err)
	}
}

// Warm-up fetches no part of a denied image and reports the denial; a tag
// pattern leaves out the tags denied and warms the rest.
func TestWarmRefusesDeniedImages(t *testing.T) {
	src := newSource()
	for _, tag := range []string{"1.27.1", "1.27.2", "1.28.0"} {
		addImage(src, tag, randomBytes(1024))
	}
	policy := cache.ImagePolicy{ApprovedOnly: true, Allow: []string{"library/x:1.27.*"}, Deny: []string{"library/x:1.27.2"}}
	c := newTestCache(t, newStore(t), cache.Options{Policies: map[string]cache.ImagePolicy{"docker.io": policy}})
	ctx := context.Background()
	final := map[string]cache.WarmProgress{}
	progress := func(p cache.WarmProgress) {
		if p.Done {
			final[p.Image] = p
		}
	}
	for _, tc := range []struct{ tag, want string }{
		{"1.27.2", `docker.io/library/x:1.27.2 is denied by upstreams[docker.io].deny "library/x:1.27.2"`},
		{"1.28.0", "docker.io/library/x:1.28.0 is not approved"},
		{"1.28.*", "docker.io/library/x:1.28.0 is not approved"}, // the tag list is asked: the repository is allowed
	} {
		err := c.Warm(ctx, cache.WarmRequest{Source: src, Repo: "library/x", Tag: tc.tag}, progress)
		if !errors.As(err, new(*cache.DeniedError)) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("warm %s: %v, want %q", tc.tag, err, tc.want)
		}
		if src.count("Resolve")+src.count("Manifest")+src.count("OpenBlob")+src.count("StatBlob") != 0 {
			t.Fatalf("warm %s asked the source %v", tc.tag, src.calls)
		}
	}
	if p := final["docker.io/library/x:1.27.2"]; !p.Done || !strings.Contains(p.Error, "is denied by") || p.Manifests != 0 {
		t.Fatalf("progress of the denied image: %+v", p)
	}
	if err := c.Warm(ctx, cache.WarmRequest{Source: src, Repo: "library/x", Tag: "1.27.*"}, progress); err != nil {
		t.Fatal(err)
	}
	if p := final["docker.io/library/x:1.27.1"]; p.Error != "" || p.Layers != 2 {
		t.Fatalf("progress of 1.27.1: %+v", p)
	}
	if n := src.count("OpenBlob"); n != 2 {
		t.Fatalf("warm-up of 1.27.* opened %d blobs, want 2 (1.27.1's config and layer)", n)
	}
	// A denied repository is refused before its tag list is asked for.
	tags := src.count("Tags")
	if err := c.Warm(ctx, cache.WarmRequest{Source: src, Repo: "library/y", Tag: "*"}, progress); !errors.As(err, new(*cache.DeniedError)) {
		t.Fatalf("warm of a repository outside allow: %v", err)
	}
	if src.count("Tags") != tags {
		t.Fatal("the tag list of a denied repository was asked for")
	}
}

// A denied tag cannot be frozen, even when its image is stored.
func TestFreezeRefusesDeniedTag(t *testing.T) {
	src := newSource()
	addImage(src, "1", randomBytes(1024))
	st := newStore(t)
	if err := pull(t, newTestCache(t, st, cache.Options{}), src, "1"); err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, st, cache.Options{Policies: map[string]cache.ImagePolicy{"docker.io": {Deny: []string{"library/x:1"}}}})
	calls := src.total()
	if _, err := c.Freeze(context.Background(), src, "library/x", "1", nil); !errors.As(err, new(*cache.DeniedError)) {
		t.Fatalf("freeze of a denied tag: %v", err)
	}
	if src.total() != calls {
		t.Fatalf("freeze of a denied tag asked the source")
	}
	if _, err := c.Unfreeze(context.Background(), src, "library/x", "1"); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("the denied tag was frozen: unfreeze says %v", err)
	}
}
