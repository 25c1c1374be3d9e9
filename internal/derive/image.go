package derive

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/entrepot/entrepot/internal/oci"
)

// historyComment marks the history entries this package adds.
const historyComment = "entrepot derive"

// Image derives one image from base: s's config changes, and one extra
// layer when s declares files. baseDigest is the base manifest's digest
// as its registry names it (its zero value means base.Digest()); it is
// recorded in the org.opencontainers.image.base.digest annotation.
//
// The result keeps the base's manifest and config media types, and its
// layers, unchanged; the extra layer takes the base's layer flavour
// (Docker or OCI gzip). Nothing is read from the base but its manifest
// and config, so a remote base's layers are never downloaded.
func Image(base v1.Image, s Spec, baseDigest v1.Hash) (v1.Image, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var blob *layerBlob
	if len(s.Files) > 0 {
		var err error
		if blob, err = buildLayer(s.Files); err != nil {
			return nil, fmt.Errorf("derive[%s]: %w", s.Name, err)
		}
	}
	return deriveImage(base, &s, baseDigest, blob)
}

// deriveImage is Image for a valid spec and an already built layer (nil
// when there are no files), so that an index builds its layer once.
func deriveImage(base v1.Image, s *Spec, baseDigest v1.Hash, blob *layerBlob) (v1.Image, error) {
	fail := func(err error) (v1.Image, error) { return nil, fmt.Errorf("derive[%s]: %w", s.Name, err) }
	layerType, err := extraLayerType(base)
	if err != nil {
		return fail(err)
	}
	if baseDigest == (v1.Hash{}) {
		if baseDigest, err = base.Digest(); err != nil {
			return fail(err)
		}
	}
	cf, err := base.ConfigFile()
	if err != nil {
		return fail(err)
	}
	cf = cf.DeepCopy()

	// The history entries are dated like the base, not "now": building
	// again tomorrow must give the same digest.
	created := cf.Created
	if changed := s.configChanges(); len(changed) > 0 {
		applyConfig(&cf.Config, s)
		cf.History = append(cf.History, v1.History{
			Created:    created,
			CreatedBy:  fmt.Sprintf("%s %s: %s", historyComment, s.Name, strings.Join(changed, ", ")),
			Comment:    historyComment,
			EmptyLayer: true,
		})
	}
	img, err := mutate.ConfigFile(base, cf)
	if err != nil {
		return fail(err)
	}
	if blob != nil {
		// Append adds the layer's diff_id and history entry to the config.
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     blob.layer(layerType),
			MediaType: layerType,
			History: v1.History{
				Created:   created,
				CreatedBy: fmt.Sprintf("%s %s: files %s", historyComment, s.Name, filePaths(s.Files)),
				Comment:   historyComment,
			},
		})
		if err != nil {
			return fail(err)
		}
	}
	return mutate.Annotations(img, s.manifestAnnotations(baseDigest)).(v1.Image), nil
}

// extraLayerType is the media type of an extra layer on base: Docker's
// gzip layer on a Docker image, OCI's on an OCI one. Anything else (a
// schema 1 manifest, an artifact) cannot be derived from.
func extraLayerType(base v1.Image) (types.MediaType, error) {
	m, err := base.Manifest()
	if err != nil {
		return "", err
	}
	if !m.Config.MediaType.IsConfig() {
		return "", fmt.Errorf("base has config of type %q, not an image config", m.Config.MediaType)
	}
	mt, err := base.MediaType()
	if err != nil {
		return "", err
	}
	switch mt {
	case types.DockerManifestSchema2:
		return types.DockerLayer, nil
	case types.OCIManifestSchema1:
		return types.OCILayer, nil
	}
	return "", fmt.Errorf("base is a %q manifest; want a Docker v2 schema 2 or OCI image manifest", mt)
}

// manifestAnnotations are s's annotations plus the base's digest and
// name, which tools such as Docker Scout and Renovate read to find the base.
func (s *Spec) manifestAnnotations(baseDigest v1.Hash) map[string]string {
	anns := maps.Clone(s.Annotations)
	if anns == nil {
		anns = make(map[string]string, 2)
	}
	baseName := s.From
	if ref, err := oci.ParseReference(s.From); err == nil {
		baseName = ref.String() // in full: docker.io/library/busybox, not busybox
	}
	anns[ocispec.AnnotationBaseImageDigest] = baseDigest.String()
	anns[ocispec.AnnotationBaseImageName] = baseName
	return anns
}

// configChanges names the config fields s changes, in a fixed order, for
// the history entry; none means the config is the base's.
func (s *Spec) configChanges() []string {
	var changed []string
	add := func(name string, set bool) {
		if set {
			changed = append(changed, name)
		}
	}
	add("env", len(s.Env) > 0)
	add("labels", len(s.Labels) > 0)
	add("volumes", len(s.Volumes) > 0)
	add("expose", len(s.Expose) > 0)
	add("user", s.User != "")
	add("workdir", s.Workdir != "")
	add("entrypoint", s.Entrypoint != nil)
	add("cmd", s.Cmd != nil)
	return changed
}

// applyConfig makes s's changes to a base's config, as the matching
// Dockerfile instructions would.
func applyConfig(c *v1.Config, s *Spec) {
	c.Env = mergeEnv(c.Env, s.Env)
	if len(s.Labels) > 0 {
		if c.Labels == nil {
			c.Labels = make(map[string]string, len(s.Labels))
		}
		maps.Copy(c.Labels, s.Labels)
	}
	for _, vol := range s.Volumes {
		if c.Volumes == nil {
			c.Volumes = make(map[string]struct{}, len(s.Volumes))
		}
		c.Volumes[vol] = struct{}{}
	}
	for _, p := range s.Expose {
		if c.ExposedPorts == nil {
			c.ExposedPorts = make(map[string]struct{}, len(s.Expose))
		}
		port, _ := exposedPort(p) // valid: Validate checked it
		c.ExposedPorts[port] = struct{}{}
	}
	if s.User != "" {
		c.User = s.User
	}
	if s.Workdir != "" {
		c.WorkingDir = s.Workdir
	}
	if s.Entrypoint != nil {
		c.Entrypoint = slices.Clone(s.Entrypoint)
		c.Cmd = nil // Docker's rule: a new entrypoint drops the old command
	}
	if s.Cmd != nil {
		c.Cmd = slices.Clone(s.Cmd)
	}
}

// mergeEnv sets vars in env ("KEY=value" entries): a key env already has
// is replaced where it stands, so the order the base chose is kept; new
// keys are appended in sorted order, so the config is the same every build.
func mergeEnv(env []string, vars map[string]string) []string {
	if len(vars) == 0 {
		return env
	}
	out := slices.Clone(env)
	seen := make(map[string]bool, len(vars))
	for i, kv := range out {
		key, _, _ := strings.Cut(kv, "=")
		if v, ok := vars[key]; ok {
			out[i] = key + "=" + v
			seen[key] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(vars)) {
		if !seen[key] {
			out = append(out, key+"="+vars[key])
		}
	}
	return out
}

// filePaths lists the paths of files, sorted, for a history entry.
func filePaths(files []File) string {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	slices.Sort(paths)
	return strings.Join(paths, " ")
}
