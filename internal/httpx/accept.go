package httpx

import (
	"mime"
	"net/http"
	"strings"
)

// Accepts returns a test of whether the request's Accept headers allow a
// media type. No Accept header, or */*, allows everything.
func Accepts(h http.Header) func(mediaType string) bool {
	var types []string
	for _, v := range h.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if mt == "*/*" {
				return func(string) bool { return true }
			}
			types = append(types, mt)
		}
	}
	if len(types) == 0 {
		return func(string) bool { return true }
	}
	return func(mediaType string) bool {
		for _, t := range types {
			if t == mediaType {
				return true
			}
		}
		return false
	}
}
