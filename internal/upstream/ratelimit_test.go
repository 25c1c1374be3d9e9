package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRateLimited(t *testing.T) {
	var requests atomic.Int64
	var limited atomic.Bool
	limited.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if limited.Load() {
			w.Header().Set("Retry-After", "2")
			w.Header().Set("Ratelimit-Limit", "100;w=21600")
			w.Header().Set("Ratelimit-Remaining", "0;w=21600")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`)
			return
		}
		io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	c, clock, logs := newTestClient(t, srv.URL, nil, nil)
	get := func() error {
		resp, err := c.Do(context.Background(), http.MethodGet, "library/alpine", "manifests/latest", nil, nil)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	until := clock.Now().Add(2 * time.Second)

	e := asError(t, get())
	if e.Status != 429 || e.Code != "TOOMANYREQUESTS" || !e.RetryAfter.Equal(until) {
		t.Errorf("first: got %d %s RetryAfter %v, want 429 TOOMANYREQUESTS %v", e.Status, e.Code, e.RetryAfter, until)
	}
	if got := c.Health().BlockedUntil(); !got.Equal(until) {
		t.Errorf("BlockedUntil = %v, want %v", got, until)
	}

	// Blocked: refused without a request.
	for range 3 {
		e = asError(t, get())
		if e.Status != 429 || e.Code != "TOOMANYREQUESTS" || !e.RetryAfter.Equal(until) {
			t.Errorf("blocked: got %d %s RetryAfter %v", e.Status, e.Code, e.RetryAfter)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("upstream got %d requests, want 1", n)
	}
	log := logs.String()
	if strings.Count(log, "rate limit reached") != 1 ||
		!strings.Contains(log, `ratelimit-limit="100;w=21600"`) || !strings.Contains(log, `ratelimit-remaining="0;w=21600"`) {
		t.Errorf("want one warning with the rate-limit headers, log:\n%s", log)
	}

	// The block ends on time.
	limited.Store(false)
	clock.Advance(2 * time.Second)
	if !c.Health().BlockedUntil().IsZero() {
		t.Errorf("BlockedUntil = %v after the block, want zero", c.Health().BlockedUntil())
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("upstream got %d requests, want 2", n)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", time.Minute},
		{"2", 2 * time.Second},
		{" 30 ", 30 * time.Second},
		{"0", time.Second},
		{"-5", time.Second},
		{"999999999999", time.Hour},
		{"Sun, 01 Jun 2025 12:05:00 GMT", 5 * time.Minute},
		{"Sun, 01 Jun 2025 11:00:00 GMT", time.Second},
		{"Mon, 02 Jun 2025 12:00:00 GMT", time.Hour},
		{"soon", time.Minute},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.value, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}
