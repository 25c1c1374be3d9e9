package oci

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// DockerHub is the registry name of Docker Hub, the registry of references
// that name none, and the name under which the cache serves it.
const DockerHub = "docker.io"

// dockerHubAliases are other names clients write for Docker Hub.
var dockerHubAliases = []string{"index.docker.io", "registry-1.docker.io"}

// Reference is a parsed image reference, normalised as Docker does:
// nginx is docker.io/library/nginx:latest.
type Reference struct {
	// Registry is the host (and port) of the registry, e.g. "docker.io",
	// "ghcr.io", "localhost:5000".
	Registry string
	// Repository is the repository on that registry, e.g. "library/nginx".
	Repository string
	// Tag and Digest are the reference's tag and digest; either or both
	// may be set. A reference with neither means the tag "latest" (see
	// String), but Tag stays empty so that rewriting keeps it as written.
	Tag    string
	Digest digest.Digest
}

// maxReferenceLength bounds what ParseReference reads.
const maxReferenceLength = 4096

// ParseReference parses an image reference as clients write it:
// [registry/]repository[:tag][@digest]. A reference without a registry is
// on Docker Hub, and a one-part Docker Hub repository is under library/.
func ParseReference(s string) (Reference, error) {
	if len(s) > maxReferenceLength {
		return Reference{}, errors.New("image reference too long")
	}
	var r Reference
	rest := s
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		d, err := ParseDigest(rest[at+1:])
		if err != nil {
			return Reference{}, fmt.Errorf("image reference %q: invalid digest: %w", s, err)
		}
		r.Digest, rest = d, rest[:at]
	}
	// A tag follows the last colon, unless that colon is a registry's port
	// (followed by a slash).
	if colon := strings.LastIndexByte(rest, ':'); colon >= 0 && !strings.Contains(rest[colon:], "/") {
		r.Tag, rest = rest[colon+1:], rest[:colon]
		if !ValidTag(r.Tag) {
			return Reference{}, fmt.Errorf("image reference %q: invalid tag %q", s, r.Tag)
		}
	}
	r.Registry, r.Repository = DockerHub, rest
	if first, after, nested := strings.Cut(rest, "/"); nested && IsHost(first) {
		r.Registry, r.Repository = first, after
	}
	r.Registry = NormalizeRegistry(r.Registry)
	if r.Registry == DockerHub && !strings.Contains(r.Repository, "/") {
		r.Repository = "library/" + r.Repository
	}
	if !ValidName(r.Repository) {
		return Reference{}, fmt.Errorf("image reference %q: invalid repository name %q", s, r.Repository)
	}
	return r, nil
}

// NormalizeRegistry returns the name a reference's registry is known by:
// Docker Hub's other host names (index.docker.io, registry-1.docker.io)
// are docker.io; any other host is itself.
func NormalizeRegistry(host string) string {
	for _, alias := range dockerHubAliases {
		if host == alias {
			return DockerHub
		}
	}
	return host
}

// Name is the reference's registry and repository,
// e.g. "docker.io/library/nginx".
func (r Reference) Name() string { return r.Registry + "/" + r.Repository }

// String is the reference in full, e.g. "docker.io/library/nginx:1.27" or
// "ghcr.io/org/app@sha256:…"; with neither tag nor digest, no suffix.
func (r Reference) String() string { return r.Name() + r.suffix() }

func (r Reference) suffix() string {
	var b strings.Builder
	if r.Tag != "" {
		b.WriteString(":" + r.Tag)
	}
	if r.Digest != "" {
		b.WriteString("@" + r.Digest.String())
	}
	return b.String()
}

// OnCache is the reference's path on a cache at cache (a host, port and
// optional path, e.g. "cache.internal:5000" or "cache.internal/mirror"):
// "cache.internal:5000/docker.io/library/nginx:1.27". Tag and digest are
// kept as written.
func (r Reference) OnCache(cache string) string {
	return strings.TrimSuffix(cache, "/") + "/" + r.String()
}

// FromCache is the inverse of OnCache: the reference an image on the cache
// at cache stands for, and whether image is on that cache at all.
func FromCache(cache, image string) (Reference, bool) {
	rest, ok := strings.CutPrefix(image, strings.TrimSuffix(cache, "/")+"/")
	if !ok {
		return Reference{}, false
	}
	first, _, nested := strings.Cut(rest, "/")
	if !nested || !IsHost(first) {
		return Reference{}, false
	}
	r, err := ParseReference(rest)
	return r, err == nil
}
