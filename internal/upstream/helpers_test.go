package upstream

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/entrepot/entrepot/internal/config"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex // protects t
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// syncBuffer is a bytes.Buffer safe to write from the client's goroutines
// and read from the test.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestClient returns a client for rawURL named "test", with a fake clock
// and a debug-level text log captured in a buffer. edit may change the
// configuration first.
func newTestClient(t *testing.T, rawURL string, transport http.RoundTripper, edit func(*config.Upstream)) (*Client, *fakeClock, *syncBuffer) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Upstream{Name: "test", URL: u, RateLimitFloor: config.Floor{Fraction: 0.10}}
	if edit != nil {
		edit(&cfg)
	}
	logs := &syncBuffer{}
	c := New(cfg, transport, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	clock := newFakeClock()
	c.now = clock.Now
	return c, clock, logs
}

// tokenServer is a token realm on its own host:port. It issues tokens
// "tok-<n>" and remembers each one's scope, so that the registry it
// protects can check them.
type tokenServer struct {
	*httptest.Server
	fetches atomic.Int64
	// gate, when set before the first request, holds every token request
	// until it is closed.
	gate chan struct{}

	mu sync.Mutex // protects the fields below
	// expiresIn is sent as expires_in unless 0 (then omitted).
	expiresIn int
	// user and password, when set, are required as basic auth.
	user, password string
	// echoAuth makes a refusal repeat the Authorization header it got, as
	// a careless realm might.
	echoAuth bool
	scopes   map[string]string // token -> scope
	queries  []url.Values      // every request's query
	auths    []string          // every request's Authorization header
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{scopes: map[string]string{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serveToken))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	n := ts.fetches.Add(1)
	if ts.gate != nil {
		<-ts.gate
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.queries = append(ts.queries, r.URL.Query())
	ts.auths = append(ts.auths, r.Header.Get("Authorization"))
	if ts.user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != ts.user || p != ts.password {
			msg := "incorrect username or password"
			if ts.echoAuth {
				msg += " in " + r.Header.Get("Authorization")
			}
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":%q}]}`, msg)
			return
		}
	}
	tok := fmt.Sprintf("tok-%d", n)
	ts.scopes[tok] = r.URL.Query().Get("scope")
	w.Header().Set("Content-Type", "application/json")
	if ts.expiresIn != 0 {
		fmt.Fprintf(w, `{"token":%q,"expires_in":%d}`, tok, ts.expiresIn)
		return
	}
	fmt.Fprintf(w, `{"access_token":%q}`, tok)
}

// valid reports whether tok was issued for scope.
func (ts *tokenServer) valid(tok, scope string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return tok != "" && ts.scopes[tok] == scope
}

// revokeAll makes every token issued so far invalid.
func (ts *tokenServer) revokeAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	clear(ts.scopes)
}

func (ts *tokenServer) set(f func(ts *tokenServer)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	f(ts)
}

func (ts *tokenServer) lastQuery() url.Values {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.queries[len(ts.queries)-1]
}

func (ts *tokenServer) authHeaders() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.auths...)
}

// bearerRegistry is a registry that demands a token from ts for the
// repository of each request and challenges otherwise.
type bearerRegistry struct {
	*httptest.Server
	next         http.Handler
	ts           *tokenServer
	unauthorized atomic.Int64  // 401s sent
	requests     atomic.Int64  // requests received
	challenged   chan struct{} // gets a value per 401 sent, if there is room
}

func newBearerRegistry(t *testing.T, ts *tokenServer, next http.Handler) *bearerRegistry {
	br := &bearerRegistry{next: next, ts: ts, challenged: make(chan struct{}, 100)}
	br.Server = httptest.NewServer(http.HandlerFunc(br.serve))
	t.Cleanup(br.Close)
	return br
}

func (br *bearerRegistry) serve(w http.ResponseWriter, r *http.Request) {
	br.requests.Add(1)
	repo := repoOf(r.URL.Path)
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !br.ts.valid(tok, "repository:"+repo+":pull") {
		br.unauthorized.Add(1)
		select {
		case br.challenged <- struct{}{}:
		default:
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(
			`Bearer realm="%s/token",service="test-registry",scope="repository:%s:pull"`, br.ts.URL, repo))
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return
	}
	br.next.ServeHTTP(w, r)
}

// repoOf extracts <repo> from /v2/<repo>/<kind>/<ref>.
func repoOf(path string) string {
	rest, _ := strings.CutPrefix(path, "/v2/")
	for _, kind := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(rest, kind); i >= 0 {
			return rest[:i]
		}
	}
	return rest
}

// newRegistry returns go-containerregistry's in-memory registry, silent,
// with opts.
func newRegistry(opts ...registry.Option) http.Handler {
	return registry.New(append([]registry.Option{registry.Logger(log.New(io.Discard, "", 0))}, opts...)...)
}

// putManifest stores body as repo:tag in reg, bypassing any auth in front.
func putManifest(t *testing.T, reg http.Handler, repo, tag, body string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	rec := httptest.NewRecorder()
	reg.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("seeding %s:%s: status %d: %s", repo, tag, rec.Code, rec.Body)
	}
}

// manifestJSON is a small image manifest; its blobs need not exist.
func manifestJSON(name string) string {
	return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,` +
		`"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},` +
		`"layers":[],"annotations":{"name":"` + name + `"}}`
}

// readAll reads and closes a response body.
func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// asError asserts that err is an *Error and returns it.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("got error %T %v, want *Error", err, err)
	}
	return e
}
