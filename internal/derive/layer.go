package derive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// LayerTime is the modification time of every entry of the extra layer:
// the Unix epoch, so that building again, anywhere, gives the same bytes.
var LayerTime = time.Unix(0, 0).UTC()

// MaxSourceSize bounds a file read from the cache host into the extra
// layer: a derived image adds small files, not payloads.
const MaxSourceSize = 16 << 20

// gzipLevel is fixed: the same level gives the same compressed bytes (with
// the same Go release's compress/flate, which rarely changes its output).
const gzipLevel = gzip.BestCompression

// layerBlob is the extra layer built once: its compressed bytes and both
// digests. One blob serves every platform of an index; only the media
// type written in each manifest differs.
type layerBlob struct {
	tar, gz        []byte
	diffID, digest v1.Hash
}

// buildLayer writes files as a reproducible tar.gz: entries sorted by
// path, times at LayerTime, owners by number only, no parent directories
// beyond those declared. Source files are read now. files must be valid.
func buildLayer(files []File) (*layerBlob, error) {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })

	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, f := range sorted {
		hdr, body, err := tarEntry(f)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("files %s: %w", f.Path, err)
		}
		if _, err := tw.Write(body); err != nil {
			return nil, fmt.Errorf("files %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}

	var gzBuf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gzBuf, gzipLevel)
	if err != nil {
		return nil, err
	}
	// The header stays empty: no file name, zero ModTime.
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &layerBlob{
		tar:    tarBuf.Bytes(),
		gz:     gzBuf.Bytes(),
		diffID: sha256Hash(tarBuf.Bytes()),
		digest: sha256Hash(gzBuf.Bytes()),
	}, nil
}

// tarEntry is the header and body of one file. The tar format is left to
// archive/tar, which writes USTAR and switches to PAX only for what USTAR
// cannot hold (a long path or link target, a large id).
func tarEntry(f File) (*tar.Header, []byte, error) {
	hdr := &tar.Header{
		Name:    strings.TrimPrefix(f.Path, "/"),
		Uid:     f.UID,
		Gid:     f.GID,
		ModTime: LayerTime,
	}
	mode := int64(DefaultFileMode)
	if f.Dir {
		mode = DefaultDirMode
	}
	if f.Mode != "" {
		m, err := parseMode(f.Mode)
		if err != nil {
			return nil, nil, fmt.Errorf("files %s: %w", f.Path, err)
		}
		mode = m
	}
	var body []byte
	switch {
	case f.Dir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
	case f.Symlink != "":
		hdr.Typeflag, hdr.Linkname, mode = tar.TypeSymlink, f.Symlink, symlinkMode
	case f.Content != nil:
		hdr.Typeflag, body = tar.TypeReg, []byte(*f.Content)
	case f.Source != "":
		b, err := readSource(f.Source)
		if err != nil {
			return nil, nil, fmt.Errorf("files %s: %w", f.Path, err)
		}
		hdr.Typeflag, body = tar.TypeReg, b
	default:
		return nil, nil, fmt.Errorf("files %s: declares no dir, content, source or symlink", f.Path)
	}
	hdr.Mode, hdr.Size = mode, int64(len(body))
	return hdr, body, nil
}

// readSource reads a file of the cache host, refusing one larger than
// MaxSourceSize. The error names the file.
func readSource(name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading source: %w", err) // *PathError names the file
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxSourceSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading source: %w", err)
	}
	if len(b) > MaxSourceSize {
		return nil, fmt.Errorf("source %s is larger than %d bytes", name, MaxSourceSize)
	}
	return b, nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum)}
}

// layer is the extra layer as go-containerregistry sees it, under the
// media type of its manifest.
func (b *layerBlob) layer(mt types.MediaType) v1.Layer {
	return &filesLayer{blob: b, mediaType: mt}
}

// filesLayer serves a layerBlob. Its digests were computed when it was
// built, so nothing is recompressed behind our back.
type filesLayer struct {
	blob      *layerBlob
	mediaType types.MediaType
}

var _ v1.Layer = (*filesLayer)(nil)

func (l *filesLayer) Digest() (v1.Hash, error)            { return l.blob.digest, nil }
func (l *filesLayer) DiffID() (v1.Hash, error)            { return l.blob.diffID, nil }
func (l *filesLayer) Size() (int64, error)                { return int64(len(l.blob.gz)), nil }
func (l *filesLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

func (l *filesLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob.gz)), nil
}

func (l *filesLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob.tar)), nil
}
