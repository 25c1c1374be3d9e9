package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/entrepot/entrepot/internal/oci"
)

// policy validates an upstream's approved-images policy (allow, deny,
// approved_only) and sets it on up, whose name and URL are set. Errors
// name the key: upstreams[0].allow[2].
func (fu *fileUpstream) policy(key string, up *Upstream) error {
	for _, list := range []struct {
		key      string
		patterns []string
	}{{"allow", fu.Allow}, {"deny", fu.Deny}} {
		for i, p := range list.patterns {
			if err := checkPolicyPattern(p, up.Name, up.URL); err != nil {
				return fmt.Errorf("%s.%s[%d]: %w", key, list.key, i, err)
			}
		}
	}
	// Without approved_only every image deny does not name is served
	// already: an allow list would change nothing, and whoever wrote one
	// surely meant to serve only what it names. Refusing to start says so;
	// guessing either way could serve what nobody approved.
	if len(fu.Allow) > 0 && !fu.ApprovedOnly {
		return fmt.Errorf("%s.allow: needs approved_only: true; without it every image that deny does not name is served, and allow changes nothing", key)
	}
	up.Allow, up.Deny, up.ApprovedOnly = fu.Allow, fu.Deny, fu.ApprovedOnly
	return nil
}

// checkPolicyPattern checks a pattern of allow or deny, relative to the
// upstream named name at u. Two slips that would silently never match are
// refused with the pattern that was meant: the upstream written out
// (docker.io/library/nginx), and on Docker Hub an official image without
// its library/ (nginx), which requests never name since the cache adds it.
func checkPolicyPattern(p, name string, u *url.URL) error {
	// Before the grammar, which would stumble on a port's colon.
	first, rest, nested := strings.Cut(p, "/")
	if nested && rest != "" && (first == name || u != nil && first == u.Host) {
		return fmt.Errorf("pattern %q: patterns are relative to the upstream; write %q", p, rest)
	}
	if err := oci.CheckRepoPattern(p); err != nil {
		return err
	}
	// A star may stand for a namespace and its slash (*nginx matches
	// bitnami/nginx): only a plain one-part name is a slip.
	repo, _ := oci.SplitRepoPattern(p)
	dockerHub := name == oci.DockerHub || u != nil && u.Host == "registry-1.docker.io"
	if dockerHub && !strings.ContainsAny(repo, "/*") {
		return fmt.Errorf("pattern %q: Docker Hub's official images are under library/; write %q", p, "library/"+p)
	}
	return nil
}
