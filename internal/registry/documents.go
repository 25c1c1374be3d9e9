package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/route"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// tags answers a tag list page. The upstream's answer names its own
// repository and paths; the client gets them as it wrote them.
func (s *Server) tags(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	q := r.URL.Query()
	query := url.Values{}
	if n := q.Get("n"); n != "" {
		if v, err := strconv.Atoi(n); err != nil || v < 0 {
			return httpx.Errorf(http.StatusBadRequest, oci.CodePaginationNumberInvalid, "invalid n %s: want a number", httpx.Quote(n))
		}
		query.Set("n", n)
	}
	if last := q.Get("last"); last != "" {
		if !oci.ValidTag(last) {
			return httpx.Errorf(http.StatusBadRequest, oci.CodeNameInvalid, "invalid last %s: want a tag", httpx.Quote(last))
		}
		query.Set("last", last)
	}
	doc, err := s.cache.Tags(r.Context(), rt.Source, rt.Repo, query)
	if err != nil {
		return err
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(doc.Body, &list); err != nil {
		return httpx.Errorf(http.StatusBadGateway, oci.CodeUnavailable, "upstream %q sent an invalid tag list: %v", rt.Source.Name(), err)
	}
	list.Name = rt.Name
	if list.Tags == nil {
		list.Tags = []string{}
	}
	body, _ := json.Marshal(list)
	if next := nextLink(doc.Link, rt, q.Get("ns")); next != "" {
		w.Header().Set("Link", next)
	}
	return writeJSON(w, r, "application/json", body)
}

// nextLink rewrites the upstream's `<url>; rel="next"` to this cache's
// path for the same repository, keeping the page's query.
func nextLink(link string, rt route.Route, ns string) string {
	start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
	if start < 0 || end < start {
		return ""
	}
	u, err := url.Parse(link[start+1 : end])
	if err != nil {
		return ""
	}
	q := url.Values{}
	for _, k := range []string{"n", "last"} {
		if v := u.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	if ns != "" {
		q.Set("ns", ns)
	}
	return "</v2/" + rt.Name + "/tags/list?" + q.Encode() + `>; rel="next"`
}

// referrers answers the referrers index of a manifest, filtered by
// artifactType here (the cache keeps the upstream's whole answer).
func (s *Server) referrers(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	doc, err := s.cache.Referrers(r.Context(), rt.Source, rt.Repo, rt.Digest)
	if err != nil {
		return err
	}
	var index v1.Index
	if err := json.Unmarshal(doc.Body, &index); err != nil {
		return httpx.Errorf(http.StatusBadGateway, oci.CodeUnavailable, "upstream %q sent an invalid referrers index: %v", rt.Source.Name(), err)
	}
	if index.Manifests == nil {
		index.Manifests = []v1.Descriptor{}
	}
	if filter := r.URL.Query().Get("artifactType"); filter != "" {
		kept := []v1.Descriptor{}
		for _, m := range index.Manifests {
			if m.ArtifactType == filter {
				kept = append(kept, m)
			}
		}
		index.Manifests = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	index.SchemaVersion = 2
	index.MediaType = v1.MediaTypeImageIndex
	body, _ := json.Marshal(index)
	return writeJSON(w, r, v1.MediaTypeImageIndex, body)
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, body []byte) error {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodGet {
		httpx.WriteBody(w, r, body)
	}
	return nil
}
