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
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/oci"
)

// Defaults for the timeouts of config.Upstream, used when a field is zero.
// They match the documented defaults of the configuration.
const (
	defaultConnectTimeout        = 5 * time.Second
	defaultResponseHeaderTimeout = 15 * time.Second
	defaultIdleTimeout           = 30 * time.Second
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

	mu sync.Mutex // protects blockedUntil
	// blockedUntil is when a 429 from the upstream expires; until then Do
	// refuses without contacting the upstream.
	blockedUntil time.Time
}

// New returns a Client for cfg. cfg.URL must be set (configuration
// validation guarantees it); user info in it is ignored, credentials come
// only from Username and Password. Zero timeouts take their documented
// defaults (5s connect, 15s response header, 30s idle).
//
// transport nil means a tuned *http.Transport built from cfg's timeouts
// (see NewTransport). A transport given here must not add credentials of
// its own: it also carries redirected requests to other hosts. log nil
// discards logs.
func New(cfg config.Upstream, transport http.RoundTripper, log *slog.Logger) *Client {
	cfg = withDefaults(cfg)
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
		log:      log,
		now:      time.Now,
	}
	c.http = &http.Client{Transport: transport, CheckRedirect: checkRedirect}
	return c
}

func withDefaults(cfg config.Upstream) config.Upstream {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = defaultResponseHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	return cfg
}

// Name is the upstream's configured name, e.g. "docker.io".
func (c *Client) Name() string { return c.name }

// Host is the host (and port, if any) of the upstream's URL.
func (c *Client) Host() string { return c.base.Host }

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
	if until := c.BlockedUntil(); !until.IsZero() {
		return nil, c.blockedError(until)
	}

	u := c.base.JoinPath("v2", repo, path)
	u.RawQuery = query.Encode()
	target := u.String()
	scope := "repository:" + repo + ":pull"

	auth := c.cachedAuth(scope)
	resp, err := c.send(ctx, method, target, header, auth)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// Answer the challenge and retry once; a second 401 is final.
		auth, err = c.authorize(ctx, resp, scope, auth)
		if err != nil {
			return nil, err
		}
		resp, err = c.send(ctx, method, target, header, auth)
		if err != nil {
			return nil, err
		}
	}
	if resp.StatusCode >= 400 {
		return nil, c.statusError(resp)
	}
	if v := resp.Header.Get("Ratelimit-Remaining"); v != "" {
		c.log.Debug("upstream rate limit", "upstream", c.name, "ratelimit-remaining", v)
	}
	return resp, nil
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

// send makes one request (the client follows redirects) and wraps the
// response body so that it is abandoned when it stalls. auth is the value
// of the Authorization header, or "" for none.
func (c *Client) send(ctx context.Context, method, target string, header http.Header, auth string) (*http.Response, error) {
	// cancel aborts the request when the body stalls; the body's Close
	// calls it too, releasing the context.
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
		return nil, c.transportError(err)
	}
	resp.Body = newIdleBody(resp.Body, c.idle, cancel, c.name)
	return resp, nil
}
