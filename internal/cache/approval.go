package cache

import (
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/internal/oci"
)

// ImagePolicy is the approved-images policy of one source: which of its
// images the cache serves. It is checked on every request before anything
// else, the store included: a denied image is never asked of the source,
// not even with a HEAD, and an image denied after it was cached stops
// being served. The zero ImagePolicy serves everything.
type ImagePolicy struct {
	// Allow and Deny are repository patterns relative to the source
	// (oci.CheckRepoPattern): library/nginx, library/node:20*, myorg/*.
	// A Deny match is refused, whatever Allow says.
	Allow, Deny []string
	// ApprovedOnly serves only what Allow matches; without it, everything
	// that Deny does not match.
	ApprovedOnly bool
}

// How a pattern with a tag applies to what names no tag (a manifest by
// digest, a blob, a tag list, referrers) is a choice, made as Harbor and
// Artifactory make it: by repository. A deny with a tag (library/node:18*)
// refuses those tags only, so a pull by digest of the same repository is
// served; to refuse content, deny its repository. An allow with a tag
// (library/node:20*) lets every digest of library/node through: clients
// pull a tag's index, then its manifests and blobs by digest, and
// Kubernetes pins images by digest. The stricter rule (only digests an
// allowed tag points to) would need the cache to know what every tag of a
// repository points to before it answers, which is an upstream request for
// anything not cached.

// approval is an ImagePolicy ready to match.
type approval struct {
	source       string // the source's name, for messages
	allow, deny  []rule
	approvedOnly bool
}

// rule is one pattern, split into its repository and tag patterns.
type rule struct {
	pattern   string // as configured, for messages
	repo, tag string // tag "": every tag and digest
}

func newApproval(source string, p ImagePolicy) *approval {
	a := &approval{source: source, approvedOnly: p.ApprovedOnly}
	for _, list := range []struct {
		patterns []string
		rules    *[]rule
	}{{p.Allow, &a.allow}, {p.Deny, &a.deny}} {
		for _, pattern := range list.patterns {
			repo, tag := oci.SplitRepoPattern(pattern)
			*list.rules = append(*list.rules, rule{pattern: pattern, repo: repo, tag: tag})
		}
	}
	return a
}

// matches tells whether r names repo's tag, or, with tag "" (a request
// that names no tag), repo itself. strict is for deny: a rule with a tag
// pattern then names no request without a tag.
func (r rule) matches(repo, tag string, strict bool) bool {
	if !oci.Glob(r.repo, repo) {
		return false
	}
	switch {
	case r.tag == "":
		return true
	case tag == "":
		return !strict
	}
	return oci.Glob(r.tag, tag)
}

// DeniedError is a request that a source's policy refuses.
type DeniedError struct {
	// Image is what was asked for: docker.io/library/nginx:latest, a
	// digest, or a repository alone.
	Image string
	// Rule says which part of the policy refused it, e.g.
	// upstreams[docker.io].deny "library/nginx:latest".
	Rule string
	// unapproved: no allow pattern matched (approved_only), rather than
	// a deny pattern.
	unapproved bool
}

func (e *DeniedError) Error() string {
	if e.unapproved {
		return e.Image + " is not approved: " + e.Rule
	}
	return e.Image + " is denied by " + e.Rule
}

// check returns a *DeniedError when the policy refuses ref of repo: a
// tag, a digest, or "" for the repository (a tag list). Nothing is
// allocated for a request it lets through: it runs on every blob request.
func (a *approval) check(repo, ref string) error {
	tag := ref
	if strings.Contains(ref, ":") {
		tag = "" // a digest
	}
	for _, r := range a.deny {
		if r.matches(repo, tag, true) {
			return a.denied(repo, ref, ".deny "+strconv.Quote(r.pattern), false)
		}
	}
	if !a.approvedOnly {
		return nil
	}
	for _, r := range a.allow {
		if r.matches(repo, tag, false) {
			return nil
		}
	}
	if len(a.allow) == 0 {
		return a.denied(repo, ref, ".approved_only is set and allow is empty", true)
	}
	return a.denied(repo, ref, ".approved_only is set and no allow pattern matches", true)
}

// denied is the error for ref of repo, refused by the policy's part why
// (".deny \"library/nginx\"").
func (a *approval) denied(repo, ref, why string, unapproved bool) *DeniedError {
	image := a.source + "/" + repo
	if ref != "" {
		image += sep(ref) + ref
	}
	return &DeniedError{Image: image, Rule: "upstreams[" + a.source + "]" + why, unapproved: unapproved}
}

// permit returns a *DeniedError when src's policy refuses ref of repo (a
// tag, a digest, or "" for the repository itself). Every entry point that
// serves or fetches content calls it first.
func (c *Cache) permit(src Source, repo, ref string) error {
	a := c.approvals[src.Name()]
	if a == nil {
		return nil
	}
	return a.check(repo, ref)
}
