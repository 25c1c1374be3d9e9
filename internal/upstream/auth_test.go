package upstream

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/config"
)

// bearerSetup is a token realm, a registry behind it seeded with two
// repositories, and a client for the registry.
type bearerSetup struct {
	ts    *tokenServer
	reg   *bearerRegistry
	c     *Client
	clock *fakeClock
	logs  *syncBuffer
}

func newBearerSetup(t *testing.T, edit func(*config.Upstream)) *bearerSetup {
	t.Helper()
	ts := newTokenServer(t)
	inner := newRegistry()
	putManifest(t, inner, "library/alpine", "latest", manifestJSON("alpine"))
	putManifest(t, inner, "library/busybox", "latest", manifestJSON("busybox"))
	reg := newBearerRegistry(t, ts, inner)
	c, clock, logs := newTestClient(t, reg.URL, nil, edit)
	return &bearerSetup{ts: ts, reg: reg, c: c, clock: clock, logs: logs}
}

// get fetches repo:latest and asserts success.
func (s *bearerSetup) get(t *testing.T, repo string) {
	t.Helper()
	resp, err := s.c.Do(context.Background(), http.MethodGet, repo, "manifests/latest", nil,
		http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}})
	if err != nil {
		t.Fatalf("Do %s: %v", repo, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Do %s: status %d", repo, resp.StatusCode)
	}
	name := repo[strings.LastIndex(repo, "/")+1:]
	if got, want := readAll(t, resp), manifestJSON(name); got != want {
		t.Fatalf("Do %s: body %q, want %q", repo, got, want)
	}
}

func (s *bearerSetup) wantCounts(t *testing.T, fetches, unauthorized int64) {
	t.Helper()
	if got := s.ts.fetches.Load(); got != fetches {
		t.Errorf("token fetches = %d, want %d", got, fetches)
	}
	if got := s.reg.unauthorized.Load(); got != unauthorized {
		t.Errorf("401s from the registry = %d, want %d", got, unauthorized)
	}
}

func TestBearerTokenCachedPerScope(t *testing.T) {
	s := newBearerSetup(t, nil)

	s.get(t, "library/alpine")
	s.wantCounts(t, 1, 1)
	q := s.ts.lastQuery()
	if q.Get("service") != "test-registry" || q.Get("scope") != "repository:library/alpine:pull" {
		t.Errorf("token query = %v, want service=test-registry scope=repository:library/alpine:pull", q)
	}
	if auths := s.ts.authHeaders(); auths[0] != "" {
		t.Errorf("anonymous token request sent Authorization %q", auths[0])
	}

	// The token is sent up front: no more 401s, no more fetches.
	for range 10 {
		s.get(t, "library/alpine")
	}
	s.wantCounts(t, 1, 1)

	// Another repository is another scope.
	s.get(t, "library/busybox")
	s.wantCounts(t, 2, 2)
	if got := s.ts.lastQuery().Get("scope"); got != "repository:library/busybox:pull" {
		t.Errorf("scope = %q, want repository:library/busybox:pull", got)
	}
}

func TestBearerTokenWithCredentials(t *testing.T) {
	s := newBearerSetup(t, func(u *config.Upstream) {
		u.Username, u.Password = "alice", "pw"
	})
	s.ts.set(func(ts *tokenServer) { ts.user, ts.password = "alice", "pw" })

	s.get(t, "library/alpine")
	s.wantCounts(t, 1, 1)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))
	if auths := s.ts.authHeaders(); auths[0] != want {
		t.Errorf("realm got Authorization %q, want %q", auths[0], want)
	}
}

func TestBearerTokenExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int           // 0: omitted, 60s assumed
		fresh     time.Duration // still reused this long after the fetch
		expired   time.Duration // refetched this long after the fetch
	}{
		{name: "expires_in 1", expiresIn: 1, fresh: 800 * time.Millisecond, expired: time.Second},
		{name: "expires_in absent", expiresIn: 0, fresh: 50 * time.Second, expired: 60 * time.Second},
		{name: "expires_in 300", expiresIn: 300, fresh: 260 * time.Second, expired: 271 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newBearerSetup(t, nil)
			s.ts.set(func(ts *tokenServer) { ts.expiresIn = tt.expiresIn })

			s.get(t, "library/alpine")
			s.wantCounts(t, 1, 1)

			s.clock.Advance(tt.fresh)
			s.get(t, "library/alpine")
			s.wantCounts(t, 1, 1)

			// An expired token is not sent: a new one is fetched, after
			// one 401 round trip as for a first pull.
			s.clock.Advance(tt.expired - tt.fresh)
			s.get(t, "library/alpine")
			s.wantCounts(t, 2, 2)
		})
	}
}

func TestBearerTokenRefusedIsRefetched(t *testing.T) {
	s := newBearerSetup(t, nil)
	s.get(t, "library/alpine")
	s.ts.revokeAll()

	// The cached token is refused; the client must not retry with it.
	s.get(t, "library/alpine")
	s.wantCounts(t, 2, 2)
}

func TestBearerTokenConcurrentFetchesCoalesce(t *testing.T) {
	s := newBearerSetup(t, nil)
	// Hold the token realm until all 20 requests have been challenged, so
	// that they all want a token while the first fetch is in flight.
	s.ts.gate = make(chan struct{})
	openGate := sync.OnceFunc(func() { close(s.ts.gate) })
	t.Cleanup(openGate)
	go func() {
		for range 20 {
			select {
			case <-s.reg.challenged:
			case <-t.Context().Done():
				return
			}
		}
		openGate()
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			resp, err := s.c.Do(context.Background(), http.MethodGet, "library/alpine", "manifests/latest", nil, nil)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.ts.fetches.Load(); got != 1 {
		t.Errorf("token fetches = %d, want 1", got)
	}
}

func TestBearerRealmDowngradeRefused(t *testing.T) {
	ts := newTokenServer(t) // http
	reg := httptest.NewTLSServer(newBearerRegistry(t, ts, newRegistry()).Config.Handler)
	t.Cleanup(reg.Close)
	c, _, _ := newTestClient(t, reg.URL, reg.Client().Transport, func(u *config.Upstream) {
		u.Username, u.Password = "alice", "pw"
	})

	_, err := c.Do(context.Background(), http.MethodGet, "library/alpine", "manifests/latest", nil, nil)
	e := asError(t, err)
	if e.Status != http.StatusUnauthorized || !strings.Contains(e.Message, "refusing token realm") {
		t.Errorf("got %v, want a 401 refusing the http realm", e)
	}
	if n := ts.fetches.Load(); n != 0 {
		t.Errorf("the http realm received %d requests, want 0", n)
	}
}

func TestBasicChallenge(t *testing.T) {
	var unauthorized, requests int
	var mu sync.Mutex // protects the counters
	inner := newRegistry()
	putManifest(t, inner, "team/app", "v1", manifestJSON("app"))
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		u, p, ok := r.BasicAuth()
		if !ok || u != "alice" || p != "pw" {
			unauthorized++
			mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="Registry Realm, private"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Unlock()
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Close)

	t.Run("with credentials", func(t *testing.T) {
		c, _, _ := newTestClient(t, reg.URL, nil, func(u *config.Upstream) {
			u.Username, u.Password = "alice", "pw"
		})
		for range 3 {
			resp, err := c.Do(context.Background(), http.MethodGet, "team/app", "manifests/v1", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
		}
		mu.Lock()
		defer mu.Unlock()
		// One 401, then basic auth up front.
		if requests != 4 || unauthorized != 1 {
			t.Errorf("requests = %d, 401s = %d; want 4 and 1", requests, unauthorized)
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		c, _, _ := newTestClient(t, reg.URL, nil, nil)
		_, err := c.Do(context.Background(), http.MethodGet, "team/app", "manifests/v1", nil, nil)
		if e := asError(t, err); e.Status != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", e.Status)
		}
	})
}

func TestCredentialsNeverAppear(t *testing.T) {
	const password = "s3cr3t-token"
	basic := base64.StdEncoding.EncodeToString([]byte("alice:" + password))

	s := newBearerSetup(t, func(u *config.Upstream) {
		u.Username, u.Password = "alice", password
	})
	// First a good pull, so that a token is issued and cached.
	s.ts.set(func(ts *tokenServer) { ts.user, ts.password = "alice", password })
	s.get(t, "library/alpine")

	var errs []string
	do := func(repo, path string) {
		_, err := s.c.Do(context.Background(), http.MethodGet, repo, path, nil, nil)
		if err == nil {
			t.Fatalf("Do %s %s succeeded, want a failure", repo, path)
		}
		errs = append(errs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	}
	do("library/alpine", "manifests/missing") // 404 with a token
	do("library/alpine", "blobs/sha256:"+strings.Repeat("0", 64))

	// Then a realm that refuses and echoes what it got.
	s.ts.set(func(ts *tokenServer) { ts.password, ts.echoAuth = "other", true })
	do("library/busybox", "manifests/latest")

	for _, text := range append(errs, s.logs.String()) {
		for _, secret := range []string{password, basic, "tok-1"} {
			if strings.Contains(text, secret) {
				t.Errorf("%q contains a secret %q", text, secret)
			}
		}
	}
}
