package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
)

func TestErrorWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *Error
		body string
	}{
		{"manifest unknown", Errorf(http.StatusNotFound, oci.CodeManifestUnknown, "manifest %q unknown", "latest"),
			`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest \"latest\" unknown"}]}`},
		{"message is escaped", Errorf(http.StatusBadRequest, oci.CodeNameInvalid, `invalid name "<x>&"`),
			`{"errors":[{"code":"NAME_INVALID","message":"invalid name \"\u003cx\u003e\u0026\""}]}`},
		{"empty message", &Error{Status: http.StatusBadGateway, Code: oci.CodeUnavailable},
			`{"errors":[{"code":"UNAVAILABLE","message":""}]}`},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// Headers a handler set for a success it could not
					// finish must not survive into the error.
					w.Header().Set("Content-Length", "12345")
					w.Header().Set("Docker-Content-Digest", "sha256:abc")
					tc.err.Write(w, r)
				}))
				defer srv.Close()
				req, err := http.NewRequest(method, srv.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}

				if resp.StatusCode != tc.err.Status {
					t.Errorf("status = %d, want %d", resp.StatusCode, tc.err.Status)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(tc.body)) {
					t.Errorf("Content-Length = %q, want %d", cl, len(tc.body))
				}
				if d := resp.Header.Values("Docker-Content-Digest"); d != nil {
					t.Errorf("Docker-Content-Digest = %q, want none", d)
				}
				if ra := resp.Header.Values("Retry-After"); ra != nil {
					t.Errorf("Retry-After = %q, want none", ra)
				}
				want := tc.body
				if method == http.MethodHead {
					want = ""
				}
				if string(got) != want {
					t.Errorf("body = %s, want %s", got, want)
				}
			})
		}
	}
}

// TestErrorWriteHeadWritesNoBody checks the handler itself writes nothing
// for HEAD, rather than relying on the server to drop it.
func TestErrorWriteHeadWritesNoBody(t *testing.T) {
	w := httptest.NewRecorder()
	Errorf(http.StatusNotFound, oci.CodeBlobUnknown, "blob unknown").Write(w, httptest.NewRequest(http.MethodHead, "/v2/x/blobs/sha256:abc", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", w.Code)
	}
	if w.Body.Len() != 0 {
		t.Errorf("HEAD body = %q, want none", w.Body)
	}
	const body = `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}`
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("HEAD Content-Length = %q, want %d, the length a GET would get", cl, len(body))
	}
}

func TestErrorRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration // from now; 0 leaves RetryAfter unset
		want  string        // "" for no header
	}{
		{"unset", 0, ""},
		{"whole seconds", 3 * time.Second, "3"},
		{"a fraction rounds up", 2500 * time.Millisecond, "3"},
		{"under a second is one", 100 * time.Millisecond, "1"},
		{"one second", time.Second, "1"},
		{"minutes", 90 * time.Second, "90"},
		{"in the past is one", -time.Minute, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// In a synctest bubble the clock stands still, so the
			// rounding is exact.
			synctest.Test(t, func(t *testing.T) {
				e := Errorf(http.StatusTooManyRequests, oci.CodeTooManyRequests, "slow down")
				if tc.after != 0 {
					e.RetryAfter = time.Now().Add(tc.after)
				}
				w := httptest.NewRecorder()
				e.Write(w, httptest.NewRequest(http.MethodGet, "/v2/", nil))
				if got := w.Header().Get("Retry-After"); got != tc.want {
					t.Errorf("Retry-After = %q, want %q", got, tc.want)
				}
				if w.Code != http.StatusTooManyRequests {
					t.Errorf("status = %d, want 429", w.Code)
				}
			})
		})
	}
}

func TestErrorString(t *testing.T) {
	e := Errorf(http.StatusNotFound, oci.CodeNameUnknown, "unknown upstream %q", "quay.io")
	if got, want := e.Error(), `404 NAME_UNKNOWN: unknown upstream "quay.io"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
