package httpx

import (
	"mime"
	"net/http"
	"strings"
)

// Accepts returns a test of whether the request's Accept headers allow a
// media type. No Accept header, or */*, allows everything. The headers are
// parsed only if the test is used: most requests never need it.
func Accepts(h http.Header) func(mediaType string) bool {
	values := h.Values("Accept")
	return func(mediaType string) bool {
		listed := false // a media type was listed
		for _, v := range values {
			for part := range strings.SplitSeq(v, ",") {
				mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
				if err != nil {
					continue
				}
				if mt == "*/*" || mt == mediaType {
					return true
				}
				listed = true
			}
		}
		return !listed
	}
}
