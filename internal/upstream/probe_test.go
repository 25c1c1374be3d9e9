package upstream

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/config"
)

// kindRecorder is an Observer that keeps each request as "METHOD kind
// code".
type kindRecorder struct {
	mu       sync.Mutex // protects requests
	requests []string
}

func (k *kindRecorder) Request(_, method, kind string, code int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests = append(k.requests, fmt.Sprintf("%s %s %d", method, kind, code))
}

func (k *kindRecorder) Received(string, int) {}

func (k *kindRecorder) get() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.requests)
}

// withRateLimit adds Docker Hub's rate-limit headers, with remaining
// requests left of 100 in 6 hours, to the answers of manifest HEADs.
func withRateLimit(remaining int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Ratelimit-Limit", "100;w=21600")
			w.Header().Set("Ratelimit-Remaining", fmt.Sprintf("%d;w=21600", remaining))
		}
		next.ServeHTTP(w, r)
	})
}

// manifestsAnswer answers every manifest request with status and an OCI
// error of code, and passes the rest to next.
func manifestsAnswer(status int, code string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			next.ServeHTTP(w, r)
			return
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "60")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"probe test"}]}`, code)
	})
}

// basicOnly demands user and password as basic auth, challenging for it.
func basicOnly(user, password string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// seededRegistry is go-containerregistry's registry holding
// library/alpine:latest.
func seededRegistry(t *testing.T) http.Handler {
	reg := newRegistry()
	putManifest(t, reg, "library/alpine", "latest", manifestJSON("alpine"))
	return reg
}

func startServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// startTLSServer serves h over TLS with httptest's certificate, quiet
// about the handshakes that clients refuse.
func startTLSServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func credentials(user, password string) func(*config.Upstream) {
	return func(u *config.Upstream) { u.Username, u.Password = user, config.Secret(password) }
}

func named(name string) func(*config.Upstream) {
	return func(u *config.Upstream) { u.Name = name }
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProbe(t *testing.T) {
	const password = "s3cret-pw"
	// bearer is a token realm requiring alice's password, echoing what it
	// gets in its refusals, and a registry behind it, with the rate-limit
	// headers of Docker Hub on HEADs.
	bearer := func(t *testing.T) string {
		ts := newTokenServer(t)
		ts.set(func(ts *tokenServer) { ts.user, ts.password, ts.echoAuth = "alice", password, true })
		return newBearerRegistry(t, ts, withRateLimit(76, seededRegistry(t))).URL
	}
	anonymousBearer := func(t *testing.T) string {
		return newBearerRegistry(t, newTokenServer(t), withRateLimit(76, seededRegistry(t))).URL
	}

	for _, tc := range []struct {
		name   string
		url    func(t *testing.T) string // the upstream's URL, unless secure
		edit   []func(*config.Upstream)
		repo   string
		secure bool // trust the test server's certificate
		state  ProbeState
		auth   string
		budget string // as "76/100 6h0m0s", "" for none
		err    string // in Err's message, "" for no error
		kinds  []string
	}{
		{
			name: "docker hub anonymous: ping, token, free HEAD",
			url:  anonymousBearer, edit: []func(*config.Upstream){named("docker.io")},
			state: ProbeOK, auth: AuthAnonymous, budget: "76/100 6h0m0s",
			kinds: []string{"GET ping 401", "GET token 200", "HEAD manifest 200"},
		},
		{
			name: "docker hub with credentials",
			url:  bearer, edit: []func(*config.Upstream){named("docker.io"), credentials("alice", password)},
			state: ProbeOK, auth: AuthToken, budget: "76/100 6h0m0s",
			kinds: []string{"GET ping 401", "GET token 200", "HEAD manifest 200"},
		},
		{
			name: "wrong password",
			url:  bearer, edit: []func(*config.Upstream){named("docker.io"), credentials("alice", "wrong-pw")},
			state: ProbeAuthFailed, auth: AuthFailed, err: "incorrect username or password",
			kinds: []string{"GET ping 401", "GET token 401"},
		},
		{
			name:  "other registry: a token, no manifest request",
			url:   anonymousBearer,
			state: ProbeOK, auth: AuthAnonymous,
			kinds: []string{"GET ping 401", "GET token 200"},
		},
		{
			name: "given repository unknown: the upstream answered all the same",
			url:  anonymousBearer, repo: "nobody/nothing",
			state: ProbeOK, auth: AuthAnonymous, budget: "76/100 6h0m0s",
			kinds: []string{"GET ping 401", "GET token 200", "HEAD manifest 404"},
		},
		{
			name: "manifest HEAD denied",
			url: func(t *testing.T) string {
				return startServer(t, manifestsAnswer(http.StatusForbidden, "DENIED", seededRegistry(t))).URL
			},
			repo:  "private/app",
			state: ProbeAuthFailed, auth: AuthFailed, err: "403 Forbidden",
			kinds: []string{"GET ping 200", "HEAD manifest 403"},
		},
		{
			name: "basic auth",
			url:  func(t *testing.T) string { return startServer(t, basicOnly("alice", password, seededRegistry(t))).URL },
			edit: []func(*config.Upstream){credentials("alice", password)},
			repo: "library/alpine", state: ProbeOK, auth: AuthBasic,
			// The HEAD sends basic auth up front.
			kinds: []string{"GET ping 401", "GET ping 200", "HEAD manifest 200"},
		},
		{
			name:  "basic auth without credentials",
			url:   func(t *testing.T) string { return startServer(t, basicOnly("alice", password, seededRegistry(t))).URL },
			state: ProbeAuthFailed, auth: AuthFailed, err: "no credentials configured",
			kinds: []string{"GET ping 401"},
		},
		{
			name:  "basic auth refused",
			url:   func(t *testing.T) string { return startServer(t, basicOnly("alice", password, seededRegistry(t))).URL },
			edit:  []func(*config.Upstream){credentials("alice", "wrong-pw")},
			state: ProbeAuthFailed, auth: AuthFailed, err: "401 Unauthorized",
			kinds: []string{"GET ping 401", "GET ping 401"},
		},
		{
			name: "429 on the HEAD: rate-limited, not retried",
			url: func(t *testing.T) string {
				return startServer(t, manifestsAnswer(http.StatusTooManyRequests, "TOOMANYREQUESTS", seededRegistry(t))).URL
			},
			edit:  []func(*config.Upstream){named("docker.io")},
			state: ProbeRateLimited, auth: AuthAnonymous, err: "429 Too Many Requests: TOOMANYREQUESTS",
			kinds: []string{"GET ping 200", "HEAD manifest 429"},
		},
		{
			name:  "budget spent",
			url:   func(t *testing.T) string { return startServer(t, withRateLimit(0, seededRegistry(t))).URL },
			edit:  []func(*config.Upstream){named("docker.io")},
			state: ProbeRateLimited, auth: AuthAnonymous, budget: "0/100 6h0m0s", err: "budget spent",
			kinds: []string{"GET ping 200", "HEAD manifest 200"},
		},
		{
			name: "server error",
			url: func(t *testing.T) string {
				return startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "down", http.StatusServiceUnavailable)
				})).URL
			},
			state: ProbeError, err: "503 Service Unavailable",
			kinds: []string{"GET ping 503"},
		},
		{
			name:  "connection refused",
			url:   func(t *testing.T) string { return "http://" + closedPort(t) },
			state: ProbeUnreachable, err: "connection refused",
			kinds: []string{"GET ping 0"},
		},
		{
			name:   "https, certificate verified",
			secure: true, edit: []func(*config.Upstream){named("docker.io")},
			state: ProbeOK, auth: AuthAnonymous,
			kinds: []string{"GET ping 200", "HEAD manifest 200"},
		},
		{
			name:  "https, unknown authority",
			url:   func(t *testing.T) string { return startTLSServer(t, seededRegistry(t)).URL },
			state: ProbeTLSError, err: "certificate signed by unknown authority",
			kinds: []string{"GET ping 0"},
		},
		{
			name: "https to a plain http server",
			url: func(t *testing.T) string {
				return strings.Replace(startServer(t, seededRegistry(t)).URL, "http:", "https:", 1)
			},
			state: ProbeTLSError, err: "server gave HTTP response to HTTPS client",
			kinds: []string{"GET ping 0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw string
			var transport http.RoundTripper
			var srv *httptest.Server // the TLS server whose certificate is trusted
			if tc.secure {
				srv = startTLSServer(t, seededRegistry(t))
				raw, transport = srv.URL, srv.Client().Transport
			} else {
				raw = tc.url(t)
			}
			c, _, _ := newTestClient(t, raw, transport, func(u *config.Upstream) {
				for _, e := range tc.edit {
					e(u)
				}
			})
			rec := &kindRecorder{}
			c.Observe(rec)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			r := c.Probe(ctx, tc.repo)

			if r.State != tc.state || r.Auth != tc.auth {
				t.Errorf("state, auth = %q, %q (err %v); want %q, %q", r.State, r.Auth, r.Err, tc.state, tc.auth)
			}
			if want := tc.state == ProbeOK || tc.state == ProbeRateLimited; r.Usable() != want {
				t.Errorf("Usable() = %v, want %v", r.Usable(), want)
			}
			budget := ""
			if !r.Budget.Seen.IsZero() {
				budget = fmt.Sprintf("%d/%d %s", r.Budget.Remaining, r.Budget.Limit, r.Budget.Window)
			}
			if budget != tc.budget {
				t.Errorf("budget %q, want %q", budget, tc.budget)
			}
			switch {
			case tc.err == "" && r.Err != nil:
				t.Errorf("Err = %v, want none", r.Err)
			case tc.err != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tc.err)):
				t.Errorf("Err = %v, want one saying %q", r.Err, tc.err)
			}
			if r.Err != nil {
				msg := r.Err.Error()
				for _, secret := range []string{password, "wrong-pw", base64.StdEncoding.EncodeToString([]byte("alice:wrong-pw"))} {
					if strings.Contains(msg, secret) {
						t.Errorf("Err holds a credential: %s", msg)
					}
				}
			}
			if got := rec.get(); !slices.Equal(got, tc.kinds) {
				t.Errorf("requests %q, want %q", got, tc.kinds)
			}
			switch {
			case srv != nil:
				if r.TLS == nil || r.TLS.Version != "TLS1.3" || !r.TLS.Expires.Equal(srv.Certificate().NotAfter) {
					t.Errorf("TLS %+v, want TLS1.3 expiring %v", r.TLS, srv.Certificate().NotAfter)
				}
			case r.TLS != nil:
				t.Errorf("TLS %+v, want none", r.TLS)
			}
		})
	}
}

// After a 429 the upstream is blocked: a second probe says so without
// contacting it.
func TestProbeBlockedSendsNothing(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	c, _, _ := newTestClient(t, srv.URL, nil, nil)
	rec := &kindRecorder{}
	c.Observe(rec)
	if r := c.Probe(context.Background(), ""); r.State != ProbeRateLimited {
		t.Fatalf("first probe: %q (%v), want rate-limited", r.State, r.Err)
	}
	r := c.Probe(context.Background(), "")
	if r.State != ProbeRateLimited || r.Err == nil || !strings.Contains(r.Err.Error(), "rate limited until 2025-06-01T12:02:00Z") {
		t.Errorf("second probe: %q (%v), want rate-limited until 12:02", r.State, r.Err)
	}
	if got, want := rec.get(), []string{"GET ping 429"}; !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

// An upstream that accepts connections and never answers is unreachable
// once the probe's context ends.
func TestProbeBlackHole(t *testing.T) {
	// Never accepted: the kernel completes the handshake, nobody answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c, _, _ := newTestClient(t, "http://"+ln.Addr().String(), nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := c.Probe(ctx, "")
	if r.State != ProbeUnreachable || r.Err == nil || !strings.Contains(r.Err.Error(), "deadline exceeded") {
		t.Errorf("%q (%v), want unreachable after the deadline", r.State, r.Err)
	}
}

// The ping is GET /v2/ under the upstream's path, without credentials
// even when some are configured.
func TestProbePingRequest(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Clone(context.Background())
		io.WriteString(w, "{}")
	}))
	c, _, _ := newTestClient(t, srv.URL+"/mirror", nil, credentials("alice", "pw"))
	if r := c.Probe(context.Background(), ""); r.State != ProbeOK || r.Auth != AuthAnonymous {
		t.Fatalf("%q %q (%v), want ok, anonymous", r.State, r.Auth, r.Err)
	}
	req := <-got
	if req.Method != http.MethodGet || req.URL.Path != "/mirror/v2/" || req.Header.Get("Authorization") != "" {
		t.Errorf("ping %s %s, Authorization %q; want GET /mirror/v2/ without", req.Method, req.URL.Path, req.Header.Get("Authorization"))
	}
}
