package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/entrepot/entrepot/internal/derive"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// DerivedName is the name under which derived images are served
// (<cache>/derived/<name>:<tag>): no upstream may take it while any
// derived image is configured.
const DerivedName = "derived"

// DeriveBase is where a derived image's base comes from: the upstream
// that serves the registry its From names, the repository on it, and the
// tag or digest.
type DeriveBase struct {
	Upstream string // its name
	Repo     string
	Tag      string
	Digest   digest.Digest
}

// Base resolves s.From against the configured upstreams. From's first
// part is an upstream's name (up/team/app:1), or the registry host it
// serves (docker.io/hashicorp/vault:1.14, ghcr.io/org/app:2), Docker Hub
// standing for docker.io and its aliases as clients write them.
func (cfg *Config) Base(s derive.Spec) (DeriveBase, error) {
	ref, err := oci.ParseReference(s.From)
	if err != nil {
		return DeriveBase{}, err
	}
	b := DeriveBase{Tag: ref.Tag, Digest: ref.Digest}
	if b.Tag == "" && b.Digest == "" {
		b.Tag = "latest"
	}
	name, _, _ := splitImage(s.From)
	if first, after, nested := strings.Cut(name, "/"); nested {
		for _, u := range cfg.Upstreams {
			if u.Name == first {
				b.Upstream, b.Repo = u.Name, after
				if isDockerHubUpstream(u) && !strings.Contains(after, "/") {
					b.Repo = "library/" + after
				}
				return b, nil
			}
		}
	}
	var names []string
	for _, u := range cfg.Upstreams {
		if u.Name == ref.Registry || u.URL.Host == ref.Registry || (ref.Registry == oci.DockerHub && isDockerHubUpstream(u)) {
			b.Upstream, b.Repo = u.Name, ref.Repository
			return b, nil
		}
		names = append(names, u.Name)
	}
	return DeriveBase{}, fmt.Errorf("no configured upstream serves %s (configured: %s)", ref.Registry, strings.Join(names, ", "))
}

// isDockerHubUpstream tells an upstream that is Docker Hub, as
// upstream.Client.DockerHub does.
func isDockerHubUpstream(u Upstream) bool {
	return u.Name == oci.DockerHub || u.URL.Host == "registry-1.docker.io"
}

// checkDerive checks the derive list against the rest of the
// configuration: each Spec valid, names unique, every base served by a
// configured upstream, no upstream named "derived", and every derived
// image warm.images names configured.
func checkDerive(cfg *Config) error {
	if len(cfg.Derive) > 0 && slices.ContainsFunc(cfg.Upstreams, func(u Upstream) bool { return u.Name == DerivedName }) {
		return fmt.Errorf("upstreams: %q is the name derived images are served under (derive); name the upstream otherwise", DerivedName)
	}
	seen := map[string]bool{}
	var errs []error
	for i, s := range cfg.Derive {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("derive[%d].name: duplicate %q", i, s.Name))
		}
		seen[s.Name] = true
		if _, err := cfg.Base(s); err != nil {
			errs = append(errs, fmt.Errorf("derive[%s].from: %w", s.Name, err))
		}
		for j, f := range s.Files {
			if f.Source == "" {
				continue
			}
			if st, err := os.Stat(f.Source); err != nil {
				errs = append(errs, fmt.Errorf("derive[%s].files[%d].source: %w", s.Name, j, err))
			} else if !st.Mode().IsRegular() {
				errs = append(errs, fmt.Errorf("derive[%s].files[%d].source: %s is not a regular file", s.Name, j, f.Source))
			}
		}
	}
	// Warm-ups of derived images name configured ones.
	for i, w := range cfg.Warm.Images {
		if rest, ok := strings.CutPrefix(w.Image, DerivedName+"/"); ok {
			if name, _, _ := splitImage(rest); !seen[name] {
				errs = append(errs, fmt.Errorf("warm.images[%d]: %q: no derived image %q is configured (derive)", i, w.Image, name))
			}
		}
	}
	return errors.Join(errs...)
}
