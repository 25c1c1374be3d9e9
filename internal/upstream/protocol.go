package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// The registry protocol, on top of Do: each call returns descriptors and
// bodies, reads what the answer's headers say, and caps what it reads.
// Errors are *Error values (errors.Is(err, oci.ErrNotFound) for a 404), or
// wrap oci.ErrDigestMismatch, oci.ErrTooLarge or oci.ErrInvalid for an
// answer the cache cannot use.

// acceptManifests asks for every manifest type.
var acceptManifests = http.Header{"Accept": oci.ManifestMediaTypes}

// Resolve asks what a manifest reference (a tag or a digest) points to,
// with a HEAD, which Docker Hub does not count against its rate limit. The
// descriptor holds what the upstream said: Digest "" when it sent none,
// MediaType "" when its Content-Type was missing or generic, Size -1 when
// it sent no length.
func (c *Client) Resolve(ctx context.Context, repo, ref string) (oci.Descriptor, error) {
	resp, err := c.Do(ctx, http.MethodHead, repo, "manifests/"+ref, nil, acceptManifests)
	if err != nil {
		return oci.Descriptor{}, err
	}
	resp.Body.Close()
	desc := oci.Descriptor{MediaType: manifestType(resp.Header), Size: resp.ContentLength}
	if d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil {
		desc.Digest = d
	}
	if want, err := digest.Parse(ref); err == nil && desc.Digest != "" && desc.Digest != want {
		return oci.Descriptor{}, fmt.Errorf("%w: upstream %q announced %s for manifest %s", oci.ErrDigestMismatch, c.name, desc.Digest, want)
	}
	if desc.Size > oci.MaxManifestSize {
		return oci.Descriptor{}, c.tooLarge("manifest " + ref)
	}
	return desc, nil
}

// Manifest gets a manifest by tag or digest. The descriptor holds what the
// upstream said (Digest "" when it announced none, MediaType "" when its
// Content-Type was missing or generic) and the body's size. The body is
// not verified: that is the caller's work, against what it asked for.
func (c *Client) Manifest(ctx context.Context, repo, ref string) ([]byte, oci.Descriptor, error) {
	resp, err := c.Do(ctx, http.MethodGet, repo, "manifests/"+ref, nil, acceptManifests)
	if err != nil {
		return nil, oci.Descriptor{}, err
	}
	defer resp.Body.Close()
	body, err := c.readDocument(resp, "manifest "+ref)
	if err != nil {
		return nil, oci.Descriptor{}, err
	}
	desc := oci.Descriptor{MediaType: manifestType(resp.Header), Size: int64(len(body))}
	if d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil {
		desc.Digest = d
	}
	return body, desc, nil
}

// StatBlob returns the size of blob d, with a HEAD.
func (c *Client) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	resp, err := c.Do(ctx, http.MethodHead, repo, "blobs/"+d.String(), nil, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return 0, fmt.Errorf("%w: upstream %q announced %s for blob %s", oci.ErrDigestMismatch, c.name, got, d)
	}
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("%w: upstream %q sent no size for blob %s", oci.ErrInvalid, c.name, d)
	}
	return resp.ContentLength, nil
}

// OpenBlob returns blob d from byte off on, and the length of what the
// reader will give (-1 when the upstream did not say). The caller closes
// the reader and verifies the bytes. An upstream that ignores the range,
// or refuses an open-ended one (go-containerregistry's registry does), is
// read past the first off bytes.
func (c *Client) OpenBlob(ctx context.Context, repo string, d digest.Digest, off int64) (io.ReadCloser, int64, error) {
	var header http.Header
	if off > 0 {
		header = http.Header{"Range": {"bytes=" + strconv.FormatInt(off, 10) + "-"}}
	}
	resp, err := c.Do(ctx, http.MethodGet, repo, "blobs/"+d.String(), nil, header)
	var e *Error
	if off > 0 && errors.As(err, &e) && e.Status == http.StatusRequestedRangeNotSatisfiable {
		resp, err = c.Do(ctx, http.MethodGet, repo, "blobs/"+d.String(), nil, nil)
	}
	if err != nil {
		return nil, 0, err
	}
	if final := resp.Request.URL; final.Host != c.base.Host || final.Scheme != c.base.Scheme {
		c.locations.add(d, final.String(), c.now()) // for the parts (OpenRange)
	}
	if off > 0 && resp.StatusCode != http.StatusPartialContent {
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			resp.Body.Close()
			return nil, 0, err
		}
		if resp.ContentLength >= 0 {
			resp.ContentLength -= off
		}
	}
	return resp.Body, resp.ContentLength, nil
}

// Tags returns a page of repo's tag list (query holds n and last) and the
// upstream's Link header to the next page, as it wrote it.
func (c *Client) Tags(ctx context.Context, repo string, query url.Values) ([]byte, string, error) {
	resp, err := c.Do(ctx, http.MethodGet, repo, "tags/list", query, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := c.readDocument(resp, "tag list")
	return body, resp.Header.Get("Link"), err
}

// Referrers returns the referrers index of manifest d, unfiltered. An
// upstream without the referrers API (a 404 or a 405, which a registry
// with it must not answer) is an error that wraps oci.ErrUnsupported.
func (c *Client) Referrers(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	resp, err := c.Do(ctx, http.MethodGet, repo, "referrers/"+d.String(), nil, nil)
	var e *Error
	if errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed) {
		return nil, fmt.Errorf("%w: %w", oci.ErrUnsupported, err)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.readDocument(resp, "referrers of "+d.String())
}

// readDocument reads a small JSON answer (a manifest, a tag list, a
// referrers index), at most oci.MaxManifestSize bytes of it.
func (c *Client) readDocument(resp *http.Response, what string) ([]byte, error) {
	if resp.ContentLength > oci.MaxManifestSize {
		return nil, c.tooLarge(what)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, oci.MaxManifestSize+1))
	if err != nil {
		return nil, err // an *Error from idleBody
	}
	if len(body) > oci.MaxManifestSize {
		return nil, c.tooLarge(what)
	}
	return body, nil
}

func (c *Client) tooLarge(what string) error {
	return fmt.Errorf("%w: upstream %q: %s is over the limit of %d bytes", oci.ErrTooLarge, c.name, what, oci.MaxManifestSize)
}

// manifestType is the Content-Type of a manifest answer, or "" when it is
// missing or too generic to tell a manifest from an index.
func manifestType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch mt {
	case "application/json", "text/plain", "application/octet-stream":
		return ""
	}
	return mt
}
