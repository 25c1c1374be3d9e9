package derive

import (
	"bytes"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// errLayerUnread: a base read from its documents has no layer bytes;
// deriving never asks for them.
var errLayerUnread = errors.New("derive: a base image's layers are not read")

// rawImage is a base image as its registry serves it: the manifest and
// config bytes, already verified by the cache, and nothing else.
type rawImage struct {
	manifest, config []byte
	mediaType        types.MediaType
}

func (r *rawImage) RawManifest() ([]byte, error)        { return r.manifest, nil }
func (r *rawImage) RawConfigFile() ([]byte, error)      { return r.config, nil }
func (r *rawImage) MediaType() (types.MediaType, error) { return r.mediaType, nil }
func (r *rawImage) LayerByDigest(v1.Hash) (partial.CompressedLayer, error) {
	return nil, errLayerUnread
}

// newRawImage returns the v1.Image of a base's manifest and config.
func newRawImage(manifest, config []byte, mt string) (v1.Image, error) {
	return partial.CompressedToImage(&rawImage{manifest: manifest, config: config, mediaType: types.MediaType(mt)})
}

// rawIndex is a base index as its registry serves it; its images are
// read, manifest and config, when asked for.
type rawIndex struct {
	manifest  []byte
	mediaType types.MediaType
	image     func(v1.Hash) (v1.Image, error)
}

var _ v1.ImageIndex = (*rawIndex)(nil)

func (r *rawIndex) MediaType() (types.MediaType, error) { return r.mediaType, nil }
func (r *rawIndex) Digest() (v1.Hash, error)            { return sha256Hash(r.manifest), nil }
func (r *rawIndex) Size() (int64, error)                { return int64(len(r.manifest)), nil }
func (r *rawIndex) RawManifest() ([]byte, error)        { return r.manifest, nil }
func (r *rawIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(r.manifest))
}
func (r *rawIndex) Image(h v1.Hash) (v1.Image, error) { return r.image(h) }
func (r *rawIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("derive: nested index %s is not derived", h)
}
