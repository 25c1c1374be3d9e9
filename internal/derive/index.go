package derive

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Index derives every platform's image of base, or those s.Platforms
// names, and lists them in a new index of the base's media type (a Docker
// manifest list stays one). baseDigest is the base index's digest (its
// zero value means base.Digest()), recorded in the index's annotations;
// each image records its own base manifest's digest.
//
// Children that are not platform images are left out: attestations
// (platform unknown/unknown), artifacts, and nested indexes. A platform
// s.Platforms names that base lacks is an error, as is an index with no
// image to derive. The extra layer is built once and shared.
func Index(base v1.ImageIndex, s Spec, baseDigest v1.Hash) (v1.ImageIndex, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	fail := func(err error) (v1.ImageIndex, error) { return nil, fmt.Errorf("derive[%s]: %w", s.Name, err) }
	mt, err := base.MediaType()
	if err != nil {
		return fail(err)
	}
	if !mt.IsIndex() {
		return fail(fmt.Errorf("base is a %q manifest, not an index", mt))
	}
	if baseDigest == (v1.Hash{}) {
		if baseDigest, err = base.Digest(); err != nil {
			return fail(err)
		}
	}
	im, err := base.IndexManifest()
	if err != nil {
		return fail(err)
	}
	wanted := make([]v1.Platform, len(s.Platforms))
	for i, p := range s.Platforms {
		wanted[i], _ = parsePlatform(p) // valid: Validate checked it
	}
	var blob *layerBlob
	if len(s.Files) > 0 {
		if blob, err = buildLayer(s.Files); err != nil {
			return fail(err)
		}
	}

	found := make([]bool, len(wanted)) // found[i]: some child is wanted[i]
	var adds []mutate.IndexAddendum
	for _, desc := range im.Manifests {
		if !desc.MediaType.IsImage() || isAttestation(desc.Platform) {
			continue
		}
		child, err := base.Image(desc.Digest)
		if err != nil {
			return fail(fmt.Errorf("platform image %s: %w", desc.Digest, err))
		}
		platform, err := childPlatform(child, desc)
		if err != nil {
			return fail(fmt.Errorf("platform image %s: %w", desc.Digest, err))
		}
		if platform == nil || !selectPlatform(*platform, wanted, found) {
			continue
		}
		img, err := deriveImage(child, &s, desc.Digest, blob)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: desc.MediaType, Platform: platform},
		})
	}
	var missing []string
	for i, ok := range found {
		if !ok {
			missing = append(missing, s.Platforms[i])
		}
	}
	if len(missing) > 0 {
		return fail(fmt.Errorf("base has no image for platform %s", strings.Join(missing, ", ")))
	}
	if len(adds) == 0 {
		return fail(fmt.Errorf("base index %s lists no platform image to derive", baseDigest))
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), mt)
	return mutate.Annotations(idx, s.manifestAnnotations(baseDigest)).(v1.ImageIndex), nil
}

// isAttestation tells the descriptors BuildKit adds for provenance and
// SBOMs, which name the platform unknown/unknown.
func isAttestation(p *v1.Platform) bool {
	return p != nil && p.OS == "unknown" && p.Architecture == "unknown"
}

// childPlatform is the platform an index names for a child, or, when it
// names none, the one the child's config declares. Artifacts (an image
// manifest whose config is not an image config) have none.
func childPlatform(child v1.Image, desc v1.Descriptor) (*v1.Platform, error) {
	m, err := child.Manifest()
	if err != nil {
		return nil, err
	}
	if !m.Config.MediaType.IsConfig() {
		return nil, nil
	}
	if desc.Platform != nil {
		return desc.Platform, nil
	}
	cf, err := child.ConfigFile()
	if err != nil {
		return nil, err
	}
	return cf.Platform(), nil
}

// selectPlatform tells whether a child of platform p is derived: always
// when no platform is wanted, else when p satisfies one of wanted (so
// linux/arm64 selects linux/arm64/v8). It marks what p satisfies in found.
func selectPlatform(p v1.Platform, wanted []v1.Platform, found []bool) bool {
	if len(wanted) == 0 {
		return true
	}
	selected := false
	for i, w := range wanted {
		if p.Satisfies(w) {
			found[i], selected = true, true
		}
	}
	return selected
}
