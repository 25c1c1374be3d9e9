package httpx

import (
	"net/http"
	"testing"
)

const (
	ociManifest    = "application/vnd.oci.image.manifest.v1+json"
	ociIndex       = "application/vnd.oci.image.index.v1+json"
	dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	dockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func TestAccepts(t *testing.T) {
	all := []string{ociManifest, ociIndex, dockerManifest, dockerList, "text/plain"}
	for _, tc := range []struct {
		name     string
		accept   []string // one Accept header per element
		accepted []string
		refused  []string
	}{
		{name: "no Accept", accepted: all},
		{name: "empty Accept", accept: []string{""}, accepted: all},
		{name: "star/star", accept: []string{"*/*"}, accepted: all},
		{name: "star/star with q among others", accept: []string{ociManifest + ", */*;q=0.1"}, accepted: all},
		{name: "star/star in a later header", accept: []string{ociManifest, "*/*"}, accepted: all},
		{name: "one type", accept: []string{ociManifest},
			accepted: []string{ociManifest}, refused: []string{ociIndex, dockerManifest, dockerList}},
		{name: "several headers", accept: []string{ociManifest, ociIndex, dockerManifest},
			accepted: []string{ociManifest, ociIndex, dockerManifest}, refused: []string{dockerList}},
		{name: "comma list with q params",
			accept:   []string{ociIndex + ";q=0.9, " + ociManifest + " ; q=0.5 ,\t" + dockerList + ";q=1"},
			accepted: []string{ociIndex, ociManifest, dockerList}, refused: []string{dockerManifest}},
		{name: "lists across headers", accept: []string{ociIndex + "," + ociManifest, dockerManifest + ";q=0.2"},
			accepted: []string{ociIndex, ociManifest, dockerManifest}, refused: []string{dockerList}},
		{name: "media types are case-insensitive", accept: []string{"Application/VND.OCI.Image.Manifest.v1+JSON"},
			accepted: []string{ociManifest}, refused: []string{ociIndex}},
		{name: "malformed parts ignored", accept: []string{"text/, " + ociManifest + ", ;;, ,=, " + dockerList + ";q"},
			accepted: []string{ociManifest}, refused: []string{ociIndex, dockerManifest, dockerList, "text/"}},
		{name: "only malformed parts is like no Accept", accept: []string{"text/, ;;"}, accepted: all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.accept {
				h.Add("Accept", v)
			}
			accepts := Accepts(h)
			for _, mt := range tc.accepted {
				if !accepts(mt) {
					t.Errorf("Accept %q refuses %s", tc.accept, mt)
				}
			}
			for _, mt := range tc.refused {
				if accepts(mt) {
					t.Errorf("Accept %q accepts %s", tc.accept, mt)
				}
			}
		})
	}
}
