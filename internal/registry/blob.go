package registry

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/route"
)

// blob answers a blob request. A HEAD costs at most an upstream HEAD; a GET
// streams from the store (sendfile) or from a fill as it arrives.
func (s *Server) blob(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	h := w.Header()
	if r.Method == http.MethodHead {
		size, err := s.cache.StatBlob(r.Context(), rt.Source, rt.Repo, rt.Digest)
		if err != nil {
			return err
		}
		setBlobHeaders(h, rt, size)
		return nil
	}

	if s.Redirect != nil {
		if expiry, ok := s.Redirect(r); ok {
			u, err := s.cache.BlobURL(r.Context(), rt.Source, rt.Repo, rt.Digest, expiry)
			if err != nil {
				return err
			}
			if u != "" {
				// 307 keeps the method; clients send their Range on.
				h.Set("Docker-Content-Digest", rt.Digest.String())
				http.Redirect(w, r, u, http.StatusTemporaryRedirect)
				return nil
			}
		}
	}
	b, err := s.cache.Blob(r.Context(), rt.Source, rt.Repo, rt.Digest)
	if err != nil {
		return err
	}
	defer b.Close()
	first, last, ranged, err := httpx.ParseRange(r.Header.Get("Range"), b.Size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", b.Size))
		return httpx.Errorf(http.StatusRequestedRangeNotSatisfiable, oci.CodeRangeInvalid,
			"range %s does not fit blob %s of %d bytes", httpx.Quote(r.Header.Get("Range")), rt.Digest, b.Size)
	}
	setBlobHeaders(h, rt, b.Size)
	end := int64(-1)
	if ranged {
		end = last + 1
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, b.Size))
		h.Set("Content-Length", strconv.FormatInt(end-first, 10))
		w.WriteHeader(http.StatusPartialContent)
	}
	// w reaches net/http's ReadFrom, which sends a stored blob's file, or
	// a fill's spool file, with sendfile.
	if err := b.Copy(r.Context(), w, first, end); err != nil {
		// Headers are out: the only honest signal left is to cut the
		// connection, so that the client never takes a short or
		// unverified body for a whole one.
		if r.Context().Err() == nil {
			s.log.Warn("blob response aborted", "digest", rt.Digest, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}

func setBlobHeaders(h http.Header, rt route.Route, size int64) {
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", rt.Digest.String())
	h.Set("Etag", `"`+rt.Digest.String()+`"`)
	h.Set("Accept-Ranges", "bytes")
	if size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
}
