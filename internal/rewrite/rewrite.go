// Package rewrite maps image references to their path on an Entrepot
// cache, the way the cache routes them: an image of an upstream's registry
// becomes <cache>/<upstream name>/<repository>, its tag and digest kept as
// written. The admission webhook rewrites pods with it, and `entrepot
// rewrite` references, Kubernetes manifests and Dockerfiles.
package rewrite

import (
	"fmt"
	"strings"

	"github.com/entrepot/entrepot/internal/oci"
)

// Upstream is one of the cache's upstreams, as the rewrite sees it: the
// name the cache serves it under (the first part of the path) and its
// registry's host (and port).
type Upstream struct {
	Name, Host string
}

// Rewriter rewrites references to one cache. It is read-only once made.
type Rewriter struct {
	cache string
	// byRegistry maps a reference's registry to the upstream that serves
	// it: upstream names first, then their URLs' hosts, as the cache's
	// route table resolves containerd's ns parameter.
	byRegistry map[string]string
	exclude    []string
}

// New returns a rewriter to cache (host, port and an optional path, e.g.
// "cache.internal:5000" or "cache.internal/mirror") for ups. Images that
// match one of the exclude patterns (oci.CheckPattern, written with the
// registry: docker.io/library/nginx*) are left alone.
func New(cache string, ups []Upstream, exclude []string) (*Rewriter, error) {
	cache = strings.TrimSuffix(cache, "/")
	if err := CheckCache(cache); err != nil {
		return nil, err
	}
	for _, p := range exclude {
		if err := oci.CheckPattern(p); err != nil {
			return nil, err
		}
	}
	r := &Rewriter{cache: cache, byRegistry: map[string]string{}, exclude: exclude}
	for _, u := range ups {
		r.byRegistry[u.Name] = u.Name
	}
	for _, u := range ups {
		host := oci.NormalizeRegistry(u.Host)
		if _, taken := r.byRegistry[host]; !taken && host != "" {
			r.byRegistry[host] = u.Name
		}
	}
	return r, nil
}

// CheckCache tells why cache is not a cache's address (host, optional
// port, optional path), or returns nil.
func CheckCache(cache string) error {
	host, path, _ := strings.Cut(cache, "/")
	switch {
	case cache == "":
		return fmt.Errorf("the cache's address is empty (want HOST[:PORT][/PATH], e.g. cache.internal:5000)")
	case strings.Contains(cache, "://"):
		return fmt.Errorf("cache %q: write the host without a scheme (HOST[:PORT][/PATH], e.g. cache.internal:5000)", cache)
	case !oci.IsHost(host):
		// Without a dot, a port or "localhost", clients would read the
		// first part as a Docker Hub namespace: a Service's short name
		// needs its port (entrepot:5000) or its domain.
		return fmt.Errorf("cache %q: %q is not a registry host (it needs a dot, a port or to be localhost, e.g. entrepot.svc:5000)", cache, host)
	}
	if path != "" && !oci.ValidName(path) {
		return fmt.Errorf("cache %q: path %q is not a valid repository path", cache, path)
	}
	return nil
}

// Cache is the cache's address, as given to New without a trailing slash.
func (r *Rewriter) Cache() string { return r.cache }

// Image returns image's reference on the cache and true, or image itself
// and false when it stays as it is: already on the cache, not a valid
// reference, on a registry that is not an upstream, or excluded.
func (r *Rewriter) Image(image string) (string, bool) {
	if image == "" || strings.HasPrefix(image, r.cache+"/") {
		return image, false
	}
	ref, err := oci.ParseReference(image)
	if err != nil {
		return image, false
	}
	name, ok := r.byRegistry[ref.Registry]
	if !ok {
		return image, false
	}
	for _, p := range r.exclude {
		if oci.MatchPattern(p, ref.String()) {
			return image, false
		}
	}
	ref.Registry = name
	return ref.OnCache(r.cache), true
}
