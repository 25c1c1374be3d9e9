package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/entrepot/entrepot/internal/oci"
)

// Pushes tells whether the upstream takes pushes through the cache
// (upstreams[].push).
func (c *Client) Pushes() bool { return c.push }

// PushScope is the token scope that pushing to repo needs.
func PushScope(repo string) string { return "repository:" + repo + ":pull,push" }

// PullScope is the token scope that reading repo needs.
func PullScope(repo string) string { return "repository:" + repo + ":pull" }

// Push sends one request of the push API (a blob upload's POST, PATCH,
// PUT, GET or DELETE; a manifest's PUT or DELETE) to path under repo,
// streaming body (nil: none; length -1 when unknown), and returns the
// upstream's answer whatever its status, so that the client gets the
// upstream's own error. scopes are the token scopes it needs (PushScope,
// and PullScope of a mount's source).
//
// The credentials are settled before a body is sent: a streamed body
// cannot be sent twice, so a request with one answers a 401 only once the
// credentials are known (a probe of /v2/ brings the challenge), and a 401
// to it goes back to the client. A request without a body answers one
// 401 challenge, as every other request does.
func (c *Client) Push(ctx context.Context, method, repo, path string, query url.Values, header http.Header, body io.Reader, length int64, scopes ...string) (*http.Response, error) {
	if !oci.ValidName(repo) {
		return nil, fmt.Errorf("upstream %q: invalid repository name %q", c.name, repo)
	}
	// "blobs/uploads/" ends in a slash: the POST that starts an upload.
	if !validPath(strings.TrimSuffix(path, "/")) {
		return nil, fmt.Errorf("upstream %q: invalid path %q", c.name, path)
	}
	if until := c.health.BlockedUntil(); !until.IsZero() {
		return nil, c.blockedError(until)
	}
	u := c.base.JoinPath("v2", repo, path) // keeps the trailing slash
	u.RawQuery = query.Encode()
	scope := strings.Join(scopes, " ")
	auth := c.cachedAuth(scope)
	if auth == "" && body != nil {
		var err error
		if auth, err = c.settleAuth(ctx, scope); err != nil {
			return nil, err
		}
	}
	resp, err := c.sendBody(ctx, method, u.String(), header, body, length, auth)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && body == nil {
		if auth, err = c.authorize(ctx, resp, scope, auth); err != nil {
			return nil, err
		}
		resp, err = c.sendBody(ctx, method, u.String(), header, nil, 0, auth)
	}
	if err != nil {
		c.noteFailure(ctx, err)
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		c.block(resp.Header)
	}
	if resp.StatusCode >= 500 {
		c.health.failed()
	}
	return resp, nil
}

// settleAuth returns the Authorization value for scope, found by asking
// /v2/ without one: "" when the upstream needs none.
func (c *Client) settleAuth(ctx context.Context, scope string) (string, error) {
	resp, err := c.send(ctx, http.MethodGet, "ping", c.base.JoinPath("v2").String()+"/", nil, "")
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		resp.Body.Close()
		return "", nil
	}
	return c.authorize(ctx, resp, scope, "")
}

// sendBody sends one request with body, as send does one without.
func (c *Client) sendBody(ctx context.Context, method, target string, header http.Header, body io.Reader, length int64, auth string) (*http.Response, error) {
	if body == nil {
		return c.send(ctx, method, "push", target, header, auth)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, io.NopCloser(body))
	if err != nil {
		return nil, c.transportError(err)
	}
	req.ContentLength = length
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	req.Header.Del("Authorization")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		c.observer.Request(c.name, method, "push", 0)
		return nil, c.transportError(err)
	}
	c.observer.Request(c.name, method, "push", resp.StatusCode)
	c.noteBudget(resp.Header)
	return resp, nil
}

// Within returns the part of an upstream's Location after /v2/<repo>/,
// with its query, when it points into repo on this upstream; ok false when
// it points elsewhere (another host: a storage backend's own upload URL).
func (c *Client) Within(repo, location string) (rest string, ok bool) {
	loc, err := url.Parse(location)
	if err != nil {
		return "", false
	}
	if loc.Host != "" && (loc.Host != c.base.Host || loc.Scheme != c.base.Scheme) {
		return "", false
	}
	prefix := strings.TrimSuffix(c.base.Path, "/") + "/v2/" + repo + "/"
	rest, ok = strings.CutPrefix(loc.Path, prefix)
	if !ok {
		return "", false
	}
	if loc.RawQuery != "" {
		rest += "?" + loc.RawQuery
	}
	return rest, true
}
