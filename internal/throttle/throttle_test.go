package throttle

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/httpx"
)

// Each client has its bucket: by its authenticated name when it has one
// (whatever its address), else by its address (whatever its port). Over
// it, 429 TOOMANYREQUESTS with the Retry-After of the next token.
func TestBuckets(t *testing.T) {
	c := New(1, 3)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), httpx.RequestID,
		func(next http.Handler) http.Handler { // the access gate's part: the client's name
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				httpx.InfoOf(r.Context()).Client = r.Header.Get("X-User")
				next.ServeHTTP(w, r)
			})
		}, c.Middleware)
	get := func(addr, user string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v2/library/x/manifests/1", nil)
		r.RemoteAddr = addr
		if user != "" {
			r.Header.Set("X-User", user)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 3 {
		if w := get("10.0.0.1:"+string(rune('1'+i))+"000", ""); w.Code != 200 {
			t.Fatalf("request %d of a burst of 3: %d", i+1, w.Code)
		}
	}
	w := get("10.0.0.1:5000", "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), "TOOMANYREQUESTS") {
		t.Fatalf("over the burst: %d, Retry-After %q, %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := get("10.0.0.2:1000", ""); w.Code != 200 {
		t.Fatalf("another address: %d", w.Code)
	}
	for i := range 3 {
		if w := get("10.0.1."+string(rune('1'+i))+":1000", "ci"); w.Code != 200 {
			t.Fatalf("ci from address %d: %d", i, w.Code)
		}
	}
	if w := get("10.0.9.9:1000", "ci"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("ci's fourth request, from a fourth address: %d; want 429", w.Code)
	}
	now = now.Add(time.Second)
	if w := get("10.0.0.1:5000", ""); w.Code != 200 {
		t.Fatalf("a second later: %d", w.Code)
	}
}
