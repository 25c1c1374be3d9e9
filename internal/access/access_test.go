package access

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"

	"github.com/entrepot/entrepot/internal/admin"
	"github.com/entrepot/entrepot/internal/auth"
	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/registry"
	"github.com/entrepot/entrepot/internal/route"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/upstream"
)

const (
	alicePassword = "correct horse battery staple"
	ciToken       = "ci-static-token-0123456789abcdef"
	tokenKey      = "the signing key of this test, 32+ bytes long"
)

// fixture is a cache with authentication in front of a real registry,
// served as serve wires it: request ids, the gate, the registry API, and
// /token.
type fixture struct {
	srv      *httptest.Server
	host     string // the cache's host:port
	origin   *httptest.Server
	requests atomic.Int64 // what reached the origin, pushes excluded
	pushing  atomic.Bool
	digest   string // library/app:1's manifest
	layer    string // one of its layers
	gate     *Gate
	logs     *syncBuffer
	// answers holds every answer's headers and body but the token
	// endpoint's, to search for secrets.
	answers *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
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

// newFixture starts the cache with the auth section and access list of
// yaml (a configuration file's, with the upstream docker.io given).
func newFixture(t *testing.T, yaml string) *fixture {
	f := &fixture{logs: &syncBuffer{}, answers: &syncBuffer{}}
	reg := ggcr.New(ggcr.Logger(stdlog.New(io.Discard, "", 0)), ggcr.WithReferrersSupport(true))
	f.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.pushing.Load() {
			f.requests.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(f.origin.Close)
	f.pushing.Store(true)
	img, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(strings.TrimPrefix(f.origin.URL, "http://") + "/library/app:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	f.digest, f.layer = d.String(), ld.String()
	f.pushing.Store(false)

	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.MinCost)
	bobHash, _ := bcrypt.GenerateFromPassword([]byte("bob-password"), bcrypt.MinCost)
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\nbob:"+string(bobHash)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "key"), []byte(tokenKey), 0o600)
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("ci:"+ciToken+"\n"), 0o600)
	file := filepath.Join(dir, "entrepot.yaml")
	content := fmt.Sprintf("upstreams:\n  - name: docker.io\n    url: %s\n  - name: ghcr.io\n    url: %s\n", f.origin.URL, f.origin.URL) +
		strings.NewReplacer("$HTPASSWD", htpasswd, "$TOKENS", tokens, "$KEY", filepath.Join(dir, "key")).Replace(yaml)
	os.WriteFile(file, []byte(content), 0o600)
	cfg, err := config.Parse([]string{"--config", file}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	c := cache.New(ctx, store.Store(), cache.Options{}, log)
	t.Cleanup(func() { cancel(); c.Close() })
	ups := make([]*upstream.Client, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		ups[i] = upstream.New(u, nil, log)
	}
	f.gate, err = New(cfg.Auth, cfg.Access, route.NewTable(ups, cfg.Default), log)
	if err != nil {
		t.Fatal(err)
	}
	// As serve's mux, but without cleaning paths: the registry API sees
	// them as sent.
	api := httpx.Chain(registry.New(c, ups, cfg.Default, log), httpx.RequestID, httpx.AccessLog(log), f.gate.Middleware)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			f.gate.ServeToken(w, r)
			return
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	f.host = strings.TrimPrefix(f.srv.URL, "http://")
	return f
}

const authYAML = `auth:
  htpasswd: $HTPASSWD
  tokens_file: $TOKENS
  token_key_file: $KEY
  groups:
    ci: [ci]
access:
  - users: [alice, group:ci]
    repos: [docker.io/library/*]
    actions: [pull]
`

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// do sends a request with an Authorization header (none if empty).
func (f *fixture) do(t *testing.T, method, path, authorization string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(path, "/token") {
		fmt.Fprintf(f.answers, "%v\n%s\n", resp.Header, body)
	}
	return resp, string(body)
}

// token asks /token for scope with basic credentials.
func (f *fixture) token(t *testing.T, authorization, scope string) string {
	t.Helper()
	resp, body := f.do(t, "GET", "/token?service=entrepot&scope="+url.QueryEscape(scope), authorization)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /token %s: %d %s", scope, resp.StatusCode, body)
	}
	var a tokenAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.Token == "" || a.AccessToken != a.Token || a.ExpiresIn <= 0 {
		t.Fatalf("GET /token: %s", body)
	}
	return a.Token
}

// The security suite: every route (path prefix, ?ns=, the default
// upstream), every kind (manifests by tag and digest, blobs, tags,
// referrers), GET and HEAD, with no, wrong, forged, expired, foreign-key
// and wrongly scoped credentials: refused, and the origin never asked.
// Right credentials pull.
func TestRefusals(t *testing.T) {
	f := newFixture(t, authYAML)
	paths := func(repo string) []string {
		var out []string
		for _, p := range []struct{ prefix, query string }{{"/v2/docker.io/", ""}, {"/v2/", "?ns=docker.io"}, {"/v2/", ""}} {
			for _, end := range []string{"/manifests/1", "/manifests/" + f.digest, "/blobs/" + f.layer, "/tags/list", "/referrers/" + f.digest} {
				out = append(out, p.prefix+repo+end+p.query)
			}
		}
		return out
	}
	aliceToken := f.token(t, basic("alice", alicePassword), "repository:docker.io/library/app:pull")
	otherRepoToken := f.token(t, basic("alice", alicePassword), "repository:docker.io/library/other:pull")
	foreign := auth.NewIssuer(Service, []byte("another key entirely, 32 bytes!!"), time.Minute)
	forgedToken, _, _ := foreign.Issue(auth.Identity{Name: "alice"}, []auth.Access{{Type: "repository", Name: "docker.io/library/app", Actions: []string{"pull"}}})
	past := time.Now().Add(-time.Hour)
	expiredToken, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": Service, "aud": Service, "sub": "alice", "iat": past.Unix(), "exp": past.Add(5 * time.Minute).Unix(),
		"access": []auth.Access{{Type: "repository", Name: "docker.io/library/app", Actions: []string{"pull"}}},
	}).SignedString([]byte(tokenKey))
	noneToken, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"iss": Service, "aud": Service, "sub": "alice", "exp": time.Now().Add(time.Hour).Unix(),
		"access": []auth.Access{{Type: "repository", Name: "docker.io/library/app", Actions: []string{"pull"}}},
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	tampered := aliceToken[:len(aliceToken)-4] + "AAAA"

	for _, tc := range []struct {
		name, authorization string
		status              int
		code                string
	}{
		{"no credentials", "", 401, "UNAUTHORIZED"},
		{"wrong password", basic("alice", "wrong"), 401, "UNAUTHORIZED"},
		{"unknown user", basic("mallory", alicePassword), 401, "UNAUTHORIZED"},
		{"malformed basic", "Basic !!!", 401, "UNAUTHORIZED"},
		{"unknown scheme", "Digest x", 401, "UNAUTHORIZED"},
		{"forged token", "Bearer " + forgedToken, 401, "UNAUTHORIZED"},
		{"tampered token", "Bearer " + tampered, 401, "UNAUTHORIZED"},
		{"expired token", "Bearer " + expiredToken, 401, "UNAUTHORIZED"},
		{"unsigned token (alg none)", "Bearer " + noneToken, 401, "UNAUTHORIZED"},
		{"token of another repository", "Bearer " + otherRepoToken, 401, "UNAUTHORIZED"},
		{"no rule for bob", basic("bob", "bob-password"), 403, "DENIED"},
	} {
		for _, path := range paths("library/app") {
			for _, method := range []string{"GET", "HEAD"} {
				resp, body := f.do(t, method, path, tc.authorization)
				if resp.StatusCode != tc.status {
					t.Errorf("%s: %s %s: %d %s; want %d", tc.name, method, path, resp.StatusCode, body, tc.status)
					continue
				}
				if method == "GET" && !strings.Contains(body, `"code":"`+tc.code+`"`) {
					t.Errorf("%s: %s %s: body %s; want code %s", tc.name, method, path, body, tc.code)
				}
				if ch := resp.Header.Get("WWW-Authenticate"); tc.status == 401 && !strings.HasPrefix(ch, `Bearer realm="`+f.srv.URL+`/token",service="entrepot"`) {
					t.Errorf("%s: %s %s: challenge %q", tc.name, method, path, ch)
				}
			}
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Fatalf("refused requests reached the origin %d times", n)
	}
	// bob is named in the refusal, with the rule.
	if _, body := f.do(t, "GET", "/v2/docker.io/library/app/manifests/1", basic("bob", "bob-password")); !strings.Contains(body, "no access rule grants bob pull on docker.io/library/app") {
		t.Errorf("refusal of bob: %s", body)
	}

	for _, authorization := range []string{basic("alice", alicePassword), "Bearer " + aliceToken, "Bearer " + ciToken, basic("anything", ciToken)} {
		for _, path := range paths("library/app") {
			if resp, body := f.do(t, "GET", path, authorization); resp.StatusCode != 200 {
				t.Errorf("%s: GET %s: %d %s", authorization[:12], path, resp.StatusCode, body)
			}
		}
	}
	// Outside the rule's repositories, alice is refused too.
	if resp, _ := f.do(t, "GET", "/v2/ghcr.io/org/app/manifests/1", basic("alice", alicePassword)); resp.StatusCode != 403 {
		t.Errorf("alice on ghcr.io/org/app: %d; want 403", resp.StatusCode)
	}
	// A push is nobody's.
	if resp, _ := f.do(t, "PUT", "/v2/docker.io/library/app/manifests/2", basic("alice", alicePassword)); resp.StatusCode != 403 {
		t.Errorf("PUT by alice: %d; want 403", resp.StatusCode)
	}
	// /v2/ needs credentials, and answers valid ones.
	if resp, _ := f.do(t, "GET", "/v2/", ""); resp.StatusCode != 401 {
		t.Errorf("GET /v2/ anonymous: %d; want 401", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v2/", basic("bob", "bob-password")); resp.StatusCode != 200 {
		t.Errorf("GET /v2/ as bob: %d; want 200", resp.StatusCode)
	}

	// No secret reaches the log, nor any answer of the registry API.
	logs, answers := f.logs.String(), f.answers.String()
	for _, secret := range []string{alicePassword, ciToken, aliceToken, "bob-password", tokenKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret is in the log: %q", secret[:8])
		}
		if strings.Contains(answers, secret) {
			t.Errorf("a secret is in an answer: %q", secret[:8])
		}
	}
}

// The token endpoint grants what the rules allow of the scopes asked, and
// nothing else; bad credentials get 401; a scope refused is left out.
func TestTokenEndpoint(t *testing.T) {
	f := newFixture(t, authYAML)
	if resp, _ := f.do(t, "GET", "/token?scope=repository:library/app:pull", basic("alice", "wrong")); resp.StatusCode != 401 {
		t.Errorf("wrong password: %d; want 401", resp.StatusCode)
	}
	tok := f.token(t, basic("alice", alicePassword), "repository:library/app:pull,push repository:ghcr.io/org/x:pull registry:catalog:*")
	id, err := f.gate.issuer.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(id.Access); got != "[{repository docker.io/library/app [pull]}]" {
		t.Errorf("granted %s; want pull of docker.io/library/app alone", got)
	}
	// The POST of containerd's OAuth2 password grant.
	resp, err := http.PostForm(f.srv.URL+"/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword},
		"scope": {"repository:docker.io/library/app:pull"}, "service": {Service}})
	if err != nil {
		t.Fatal(err)
	}
	var a tokenAnswer
	json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	if resp.StatusCode != 200 || a.AccessToken == "" {
		t.Fatalf("POST /token: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v2/docker.io/library/app/manifests/1", "Bearer "+a.AccessToken); resp.StatusCode != 200 {
		t.Errorf("pull with the POSTed token: %d", resp.StatusCode)
	}
}

// A real client (go-containerregistry's, as crane) goes through the token
// flow with basic credentials and pulls; with a wrong password it fails;
// anonymous pulls work where auth.anonymous allows them, only there.
func TestClientTokenFlow(t *testing.T) {
	f := newFixture(t, authYAML+"  - users: [anonymous]\n    repos: [ghcr.io/public/*]\n    actions: [pull]\n")
	pull := func(ref string, a authn.Authenticator) error {
		r, err := name.ParseReference(f.host+ref, name.Insecure)
		if err != nil {
			return err
		}
		img, err := remote.Image(r, remote.WithAuth(a))
		if err != nil {
			return err
		}
		return validate.Image(img)
	}
	if err := pull("/docker.io/library/app:1", &authn.Basic{Username: "alice", Password: alicePassword}); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := pull("/docker.io/library/app:1", &authn.Basic{Username: "alice", Password: "wrong"}); err == nil {
		t.Fatal("a wrong password pulled")
	}
	if err := pull("/docker.io/library/app:1", authn.Anonymous); err == nil {
		t.Fatal("an anonymous client pulled docker.io/library/app")
	}
	f.pushing.Store(true)
	img, _ := random.Image(1024, 1)
	ref, _ := name.ParseReference(strings.TrimPrefix(f.origin.URL, "http://") + "/public/tool:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	f.pushing.Store(false)
	if err := pull("/ghcr.io/public/tool:1", authn.Anonymous); err != nil {
		t.Fatalf("anonymous pull of ghcr.io/public/tool: %v", err)
	}
}

// anyone is an authenticated user no rule names.
var anyone = auth.Identity{Name: "someone", Via: "basic"}

// fuzzGate is a gate with default rules (authenticated users pull) over
// two upstreams, and no origin: fuzzing never sends a request.
func fuzzGate(tb testing.TB) *Gate {
	u1, _ := url.Parse("http://127.0.0.1:1")
	log := slog.New(slog.DiscardHandler)
	ups := []*upstream.Client{
		upstream.New(config.Upstream{Name: "docker.io", URL: u1}, nil, log),
		upstream.New(config.Upstream{Name: "ghcr.io", URL: u1}, nil, log),
	}
	g, err := New(config.Auth{Tokens: map[string]string{ciToken: "ci"}, TokenTTL: time.Minute}, nil, route.NewTable(ups, "docker.io"), log)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// A rule's admin action opens the admin API to its users, with basic
// credentials or a static token, besides the admin token; not to others,
// not to anonymous clients, not with a registry token.
func TestAdminAction(t *testing.T) {
	f := newFixture(t, authYAML+"  - users: [alice]\n    repos: [\"*\"]\n    actions: [admin]\n")
	adm := admin.New(nil, nil, "the-admin-token", slog.New(slog.DiscardHandler))
	adm.Handle("GET /probe", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	adm.AllowAdmins(f.gate.Admin)
	srv := httptest.NewServer(adm)
	defer srv.Close()
	registryToken := f.token(t, basic("alice", alicePassword), "repository:docker.io/library/app:pull")
	for _, tc := range []struct {
		authorization string
		want          int
	}{
		{"Bearer the-admin-token", 200},
		{basic("alice", alicePassword), 200},
		{basic("alice", "wrong"), 401},
		{basic("bob", "bob-password"), 401},
		{"Bearer " + ciToken, 401},
		{"Bearer " + registryToken, 401},
		{"", 401},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/probe", nil)
		if tc.authorization != "" {
			req.Header.Set("Authorization", tc.authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%.20s: %d; want %d", tc.authorization, resp.StatusCode, tc.want)
		}
	}
}

// Paths that name no upstream, or try to escape one, are refused to an
// anonymous client before anything else, and never reach the origin;
// with credentials they get the registry's own errors, never content of
// another upstream.
func TestPathTricks(t *testing.T) {
	f := newFixture(t, authYAML)
	for _, path := range []string{
		"/v2/evil.example/library/app/manifests/1",
		"/v2/library/app/manifests/1?ns=evil.example",
		"/v2/library/app/manifests/1?ns=169.254.169.254",
		"/v2/docker.io/library/../../ghcr.io/app/manifests/1",
		"/v2/docker.io/library/app/manifests/..%2F..%2F1",
		"/v2/docker.io//library/app/manifests/1",
		"/v2/docker.io/library/app/blobs/sha256:" + strings.Repeat("0", 63),
	} {
		if resp, body := f.do(t, "GET", path, ""); resp.StatusCode != 401 {
			t.Errorf("anonymous GET %s: %d %s; want 401", path, resp.StatusCode, body)
		}
		resp, body := f.do(t, "GET", path, basic("alice", alicePassword))
		if resp.StatusCode == 200 || strings.Contains(body, alicePassword) {
			t.Errorf("alice GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Fatalf("path tricks reached the origin %d times", n)
	}
	// An encoded slash is a slash: the same repository, for the same
	// rules.
	if resp, _ := f.do(t, "GET", "/v2/docker.io%2Flibrary%2Fapp/manifests/1", ""); resp.StatusCode != 401 {
		t.Errorf("anonymous GET with encoded slashes: %d; want 401", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v2/docker.io%2Fghcr.io%2Forg/app/manifests/1", basic("alice", alicePassword)); resp.StatusCode == 200 {
		t.Errorf("alice GET of ghcr.io content through encoded slashes: %d", resp.StatusCode)
	}
}
