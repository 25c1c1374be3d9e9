// Package upstream is the HTTP client for one upstream registry: auth,
// timeouts, redirects, rate limits.
//
// A Client sends requests to <base>/v2/<repo>/<path>, answers the registry's
// 401 challenges (anonymous or authenticated bearer tokens, or basic auth),
// follows redirects without carrying credentials to other hosts, abandons
// response bodies that stall, and stops contacting an upstream that answered
// 429 until its Retry-After has passed. Every failure is an *Error that names
// the upstream and never contains a credential.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/oci"
)

// userAgent is sent with every request, to the upstream, its token realm and
// any redirect target.
const userAgent = "entrepot"

// Client talks to one configured upstream registry. Safe for concurrent use.
type Client struct {
	name     string
	base     *url.URL // cfg.URL without user info
	username string
	password config.Secret
	idle     time.Duration // see idleBody
	ttl      time.Duration
	push     bool // upstreams[].push
	http     *http.Client
	log      *slog.Logger

	// now is the clock for token expiry and rate-limit blocks; tests replace
	// it before the first request.
	now func() time.Time

	tokens tokenCache
	// flight coalesces concurrent token fetches for the same scope.
	flight singleflight.Group
	// useBasic is set once the upstream has asked for basic auth, so later
	// requests send it up front instead of paying a 401 round trip each.
	useBasic atomic.Bool

	health *Health
	budget budget
	// locations are the URLs blobs redirected to (OpenRange).
	locations locations
	// shared is what the cluster's replicas know of the upstream
	// (Share); nil: this replica's answers only.
	shared Shared
	// observer is told of every request and of the body bytes read.
	observer Observer
}

// Observer is told of the client's traffic, for metrics. Its methods must
// be quick and safe for concurrent use.
type Observer interface {
	// Request: one request sent, of kind manifest, blob, tags, referrers,
	// token or ping; code is the answer's status, 0 when there was none.
	Request(upstream, method, kind string, code int)
	// Received: n body bytes read from the upstream.
	Received(upstream string, n int)
}

type nopObserver struct{}

func (nopObserver) Request(string, string, string, int) {}
func (nopObserver) Received(string, int)                {}

// Observe makes o the client's observer. Call it before the first request.
func (c *Client) Observe(o Observer) { c.observer = o }

// New returns a Client for cfg, as package config built and validated it
// (config.NewUpstream sets the documented defaults). cfg.URL must be set;
// user info in it is ignored, credentials come only from Username and
// Password. A zero timeout is no timeout.
//
// transport nil means a tuned *http.Transport built from cfg's timeouts
// (see NewTransport), which refuses to connect to link-local and metadata
// addresses, and to loopback and private ones the upstream is not on. A
// transport given here has only the policy it brings, and must not add
// credentials of its own: it also carries redirected requests to other
// hosts. log nil discards logs.
func New(cfg config.Upstream, transport http.RoundTripper, log *slog.Logger) *Client {
	if transport == nil {
		transport = NewTransport(cfg)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := *cfg.URL
	base.User = nil
	c := &Client{
		name:     cfg.Name,
		base:     &base,
		username: cfg.Username,
		password: cfg.Password,
		idle:     cfg.IdleTimeout,
		ttl:      cfg.TTL,
		push:     cfg.Push,
		log:      log,
		now:      time.Now,
		observer: nopObserver{},
	}
	c.budget.floor = cfg.RateLimitFloor
	c.health = newHealth(func() time.Time { return c.now() })
	c.http = &http.Client{Transport: transport, CheckRedirect: checkRedirect}
	return c
}

// Name is the upstream's configured name, e.g. "docker.io".
func (c *Client) Name() string { return c.name }

// Host is the host (and port, if any) of the upstream's URL.
func (c *Client) Host() string { return c.base.Host }

// TTL is how long a tag, a tag list or a referrers answer of this upstream
// stays fresh.
func (c *Client) TTL() time.Duration { return c.ttl }

// DockerHub tells whether the upstream is Docker Hub, whose one-part
// repository names are under library/.
func (c *Client) DockerHub() bool {
	return c.name == oci.DockerHub || c.base.Host == "registry-1.docker.io"
}

// Health is the record of the upstream's recent failures and 429 blocks.
func (c *Client) Health() *Health { return c.health }

// Failing tells whether the upstream failed lately or is blocked (see
// Health.Failing).
func (c *Client) Failing() bool { return c.health.Failing() }

// Do sends method to <base>/v2/<repo>/<path> (path like "manifests/latest",
// "blobs/sha256:..", "tags/list", "referrers/sha256:..") with query and
// extra headers (Accept, Range), handling auth and redirects. It returns
// the response when the status is 2xx (or 3xx not followed, such as 304)
// and the caller closes the body. The body fails with an *Error wrapping
// ErrStalled if no byte arrives for the idle timeout while the caller reads.
//
// Any other status or a transport failure returns a *Error (body read with
// a 64 KiB cap and closed). While the upstream is rate-limited Do returns a
// 429 *Error without contacting it. An invalid repo or path is a plain
// error: it is the caller's bug, not the upstream's failure.
//
// Do puts no overall deadline on the request: ctx bounds it, and the
// transport's timeouts and the idle timeout bound each stage.
func (c *Client) Do(ctx context.Context, method, repo, path string, query url.Values, header http.Header) (*http.Response, error) {
	if !oci.ValidName(repo) {
		return nil, fmt.Errorf("upstream %q: invalid repository name %q", c.name, repo)
	}
	if !validPath(path) {
		return nil, fmt.Errorf("upstream %q: invalid path %q", c.name, path)
	}
	if until := c.health.BlockedUntil(); !until.IsZero() {
		return nil, c.blockedError(until)
	}

	u := c.base.JoinPath("v2", repo, path)
	u.RawQuery = query.Encode()
	target := u.String()
	scope := "repository:" + repo + ":pull"

	resp, err := c.authorized(ctx, method, kindOf(path), target, scope, header)
	if err != nil {
		c.noteFailure(ctx, err)
		return nil, err
	}
	c.health.succeeded()
	return resp, nil
}

// kindOf names the kind of a request path for metrics: manifest, blob,
// tags or referrers. Token fetches and Probe's GET /v2/ are sent with
// kinds of their own: token and ping.
func kindOf(path string) string {
	switch first, _, _ := strings.Cut(path, "/"); first {
	case "manifests":
		return "manifest"
	case "blobs":
		return "blob"
	case "tags":
		return "tags"
	case "referrers":
		return "referrers"
	}
	return "other"
}

// authorized sends the request with the credentials that scope needs,
// answering one 401 challenge, and returns the response when the status
// is below 400.
func (c *Client) authorized(ctx context.Context, method, kind, target, scope string, header http.Header) (*http.Response, error) {
	auth := c.cachedAuth(scope)
	resp, err := c.send(ctx, method, kind, target, header, auth)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// Answer the challenge and retry once; a second 401 is final.
		auth, err = c.authorize(ctx, resp, scope, auth)
		if err != nil {
			return nil, err
		}
		resp, err = c.send(ctx, method, kind, target, header, auth)
		if err != nil {
			return nil, err
		}
	}
	if resp.StatusCode >= 400 {
		return nil, c.statusError(resp)
	}
	return resp, nil
}

// noteFailure starts the upstream's quiet period after a failure of its
// own: no answer, or a 5xx. A definite answer (404, 401) is no failure, a
// 429 blocks the upstream already, and a request its caller gave up on
// says nothing of the upstream.
func (c *Client) noteFailure(ctx context.Context, err error) {
	var e *Error
	if ctx.Err() != nil || !errors.As(err, &e) {
		return
	}
	if e.Status == 0 || e.Status >= 500 {
		c.health.failed()
	}
}

// validPath reports whether path is a non-empty relative path without
// dot segments, so that joining it cannot climb out of /v2/<repo>/.
func validPath(path string) bool {
	if path == "" {
		return false
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// send makes one request of kind (for metrics; the client follows
// redirects) and wraps the response body so that it is abandoned when it
// stalls and its bytes are counted. auth is the value of the Authorization
// header, or "" for none. Every answer's rate-limit headers update the
// budget.
func (c *Client) send(ctx context.Context, method, kind, target string, header http.Header, auth string) (*http.Response, error) {
	// cancel aborts the request when the body stalls; the body's Close
	// calls it too, releasing the context.
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		cancel()
		return nil, c.transportError(err)
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	// Credentials are ours to choose, never the caller's.
	req.Header.Del("Authorization")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("User-Agent", userAgent)

	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		c.observer.Request(c.name, method, kind, 0)
		return nil, c.transportError(err)
	}
	c.observer.Request(c.name, method, kind, resp.StatusCode)
	c.noteBudget(resp.Header)
	resp.Body = newIdleBody(resp.Body, c.idle, cancel, c.name, func() {
		if parent.Err() == nil { // not the caller's doing
			c.health.failed()
		}
	}, func(n int) { c.observer.Received(c.name, n) })
	return resp, nil
}
