// Package httpx holds the small HTTP details of the registry API: the OCI
// error type and its rendering, byte ranges, Accept, and corking the
// connection around answers that should leave in full segments.
package httpx

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an error the registry API answers with: an HTTP status and an
// OCI error code and message. Handlers return it; one place renders it.
type Error struct {
	Status  int
	Code    string // OCI error code, e.g. "MANIFEST_UNKNOWN"
	Message string
	// RetryAfter, when set, is sent as the Retry-After header (429, 503).
	RetryAfter time.Time
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf returns an *Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// The OCI distribution error codes Entrepot answers with, plus UNAVAILABLE
// (Distribution's code for a failing backend, used for upstream failures).
const (
	CodeBlobUnknown     = "BLOB_UNKNOWN"
	CodeDigestInvalid   = "DIGEST_INVALID"
	CodeManifestUnknown = "MANIFEST_UNKNOWN"
	CodeManifestInvalid = "MANIFEST_INVALID"
	CodeNameInvalid     = "NAME_INVALID"
	CodeNameUnknown     = "NAME_UNKNOWN"
	CodeSizeInvalid     = "SIZE_INVALID"
	CodeDenied          = "DENIED"
	CodeUnsupported     = "UNSUPPORTED"
	CodeTooManyRequests = "TOOMANYREQUESTS"
	CodeRangeInvalid    = "RANGE_INVALID"
	CodeUnavailable     = "UNAVAILABLE"
)

// Write renders e as an OCI error body. For a HEAD request only the
// headers go out, as HTTP requires.
func (e *Error) Write(w http.ResponseWriter, r *http.Request) {
	body, _ := json.Marshal(struct {
		Errors []ociError `json:"errors"`
	}{[]ociError{{Code: e.Code, Message: e.Message}}})
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if !e.RetryAfter.IsZero() {
		secs := int(time.Until(e.RetryAfter).Seconds() + 0.999)
		h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

type ociError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
