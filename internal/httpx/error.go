// Package httpx holds the small HTTP details of the registry API: the OCI
// error type and its rendering, byte ranges, Accept, and corking the
// connection around answers that should leave in full segments.
package httpx

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an error the registry API answers with: an HTTP status and an
// OCI error code and message. Handlers return it; one place renders it.
type Error struct {
	Status  int
	Code    string // OCI error code (package oci), e.g. oci.CodeManifestUnknown
	Message string
	// RetryAfter, when set, is sent as the Retry-After header (429, 503).
	RetryAfter time.Time
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf returns an *Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// maxMessage bounds the message of an error body: messages quote what
// the client sent (through Quote), and a long input must not come back
// whole, even where a quote was forgotten.
const maxMessage = 1024

// Quote quotes s, a client's input, for an error message: at most
// maxQuoted bytes of it, marked when cut.
func Quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(strings.ToValidUTF8(s[:maxQuoted], "")) + "..."
}

// maxQuoted bounds how much of one input an error message quotes: a full
// repository name and tag fit.
const maxQuoted = 300

// Write renders e as an OCI error body. For a HEAD request only the
// headers go out, as HTTP requires.
func (e *Error) Write(w http.ResponseWriter, r *http.Request) {
	body, _ := json.Marshal(struct {
		Errors []ociError `json:"errors"`
	}{[]ociError{{Code: e.Code, Message: bounded(e.Message)}}})
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

func bounded(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	return strings.ToValidUTF8(msg[:maxMessage], "") + "..."
}
