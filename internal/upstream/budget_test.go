package upstream

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseRateLimit(t *testing.T) {
	for _, tc := range []struct {
		in     string
		n      int64
		window time.Duration
		ok     bool
	}{
		{"100;w=21600", 100, 6 * time.Hour, true},
		{" 7 ; w=60", 7, time.Minute, true},
		{"100", 100, 0, true},
		{"100;w=21600, 5;w=1", 100, 6 * time.Hour, true},
		{"", 0, 0, false},
		{"-1;w=5", 0, 0, false},
		{"many", 0, 0, false},
		{"5;w=-3", 5, 0, true},
	} {
		n, w, ok := parseRateLimit(tc.in)
		if n != tc.n || w != tc.window || ok != tc.ok {
			t.Errorf("parseRateLimit(%q) = %d, %v, %v; want %d, %v, %v", tc.in, n, w, ok, tc.n, tc.window, tc.ok)
		}
	}
}

func FuzzParseRateLimit(f *testing.F) {
	for _, s := range []string{"100;w=21600", "0", "1;w=1;x=2", ";;", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, w, ok := parseRateLimit(s)
		if ok && (n < 0 || w < 0) {
			t.Fatalf("parseRateLimit(%q) = %d, %v", s, n, w)
		}
	})
}

// TestBudgetFloor: the budget goes under its floor as the upstream's
// answers say so, Saving tells, the log says it once, and the window's end
// renews it.
func TestBudgetFloor(t *testing.T) {
	var remaining atomic.Int64
	remaining.Store(12)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Ratelimit-Limit", "100;w=60")
		w.Header().Set("Ratelimit-Remaining", strconv.FormatInt(remaining.Add(-1), 10)+";w=60")
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	}))
	t.Cleanup(srv.Close)
	c, _, logs := newTestClient(t, srv.URL, nil, nil)
	now := time.Now()
	c.now = func() time.Time { return now }
	for i, wantSaving := range []bool{false, false, true, true} { // 11, 10, 9, 8 left; floor 10
		if _, err := c.Resolve(t.Context(), "library/x", "1"); err != nil {
			t.Fatal(err)
		}
		if got := c.Saving(); got != wantSaving {
			t.Errorf("after request %d (%d left): Saving = %v, want %v", i+1, remaining.Load(), got, wantSaving)
		}
	}
	if n := strings.Count(logs.String(), "under its floor"); n != 1 {
		t.Errorf("logged %d times under the floor, want once:\n%s", n, logs.String())
	}
	now = now.Add(61 * time.Second)
	if c.Saving() {
		t.Error("Saving after the window ended, want the budget renewed")
	}
}
