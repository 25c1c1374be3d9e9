package oci

import v1 "github.com/opencontainers/image-spec/specs-go/v1"

// Descriptor describes content by digest, media type and size (the image
// spec's type, under the vocabulary's name).
type Descriptor = v1.Descriptor

// Manifest media types: OCI's and Docker's.
const (
	MediaTypeImageManifest  = v1.MediaTypeImageManifest
	MediaTypeImageIndex     = v1.MediaTypeImageIndex
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	// Schema 1, still served by some old registries.
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// ManifestMediaTypes are every manifest type, in the order a cache asks an
// upstream for them: all of them, so that it caches what a tag really is
// and answers each client according to its own Accept.
var ManifestMediaTypes = []string{
	MediaTypeImageIndex, MediaTypeImageManifest,
	MediaTypeDockerList, MediaTypeDockerManifest,
	MediaTypeDockerSchema1Signed, MediaTypeDockerSchema1,
}

// IsIndex tells whether a media type lists manifests per platform.
func IsIndex(mediaType string) bool {
	return mediaType == MediaTypeImageIndex || mediaType == MediaTypeDockerList
}
