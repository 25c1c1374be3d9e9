package upstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	// maxTokenBody caps the token realm's answer; a token is a few KiB.
	maxTokenBody = 1 << 20
	// defaultTokenLifetime applies when the realm does not say (Docker's
	// token spec says to assume 60 seconds).
	defaultTokenLifetime = 60 * time.Second
	// tokenTimeout bounds one token fetch. The fetch runs apart from the
	// caller's context because other requests may be waiting on it.
	tokenTimeout = 30 * time.Second
)

// token is a bearer token and when to stop using it.
type token struct {
	value   string
	expires time.Time
}

// tokenCache holds one bearer token per scope ("repository:<repo>:pull").
type tokenCache struct {
	mu sync.Mutex // protects m
	m  map[string]token
}

// get returns the unexpired token for scope, if any.
func (tc *tokenCache) get(scope string, now time.Time) (string, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	t, ok := tc.m[scope]
	if !ok || !now.Before(t.expires) {
		return "", false
	}
	return t.value, true
}

// put stores t for scope and drops expired tokens, so the map holds only
// the repositories pulled within the last token lifetime.
func (tc *tokenCache) put(scope string, t token, now time.Time) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.m == nil {
		tc.m = make(map[string]token)
	}
	for s, old := range tc.m {
		if !now.Before(old.expires) {
			delete(tc.m, s)
		}
	}
	tc.m[scope] = t
}

// cachedAuth is the Authorization value to send up front for scope: basic
// auth if the upstream asked for it before, else a cached bearer token, else
// nothing.
func (c *Client) cachedAuth(scope string) string {
	if c.useBasic.Load() {
		return c.basicAuth()
	}
	if tok, ok := c.tokens.get(scope, c.now()); ok {
		return "Bearer " + tok
	}
	return ""
}

func (c *Client) basicAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.username+":"+c.password.Reveal()))
}

// authorize answers the 401 resp (which it closes) to a request that sent
// the Authorization value sent, and returns the value to retry with. It
// returns the 401 as an *Error when there is nothing better to try.
func (c *Client) authorize(ctx context.Context, resp *http.Response, scope, sent string) (string, error) {
	challenges := parseChallenges(resp.Header.Values("WWW-Authenticate"))
	unauthorized := c.statusError(resp)

	if ch, ok := findChallenge(challenges, "bearer"); ok {
		// A token we sent that was refused is stale: fetch another.
		stale, _ := strings.CutPrefix(sent, "Bearer ")
		tok, err := c.token(ctx, ch, scope, stale)
		if err != nil {
			return "", err
		}
		return "Bearer " + tok, nil
	}
	if _, ok := findChallenge(challenges, "basic"); ok && c.username != "" && !strings.HasPrefix(sent, "Basic ") {
		c.useBasic.Store(true)
		return c.basicAuth(), nil
	}
	return "", unauthorized
}

// token returns a bearer token for scope other than stale (the token the
// upstream just refused, or ""). Concurrent callers share one fetch; each
// waits only as long as its own ctx allows.
func (c *Client) token(ctx context.Context, ch challenge, scope, stale string) (string, error) {
	if tok, ok := c.tokens.get(scope, c.now()); ok && tok != stale {
		return tok, nil
	}
	flight := c.flight.DoChan(scope, func() (any, error) {
		// Look again inside the flight: a fetch that finished between the
		// lookup above and joining the flight has filled the cache.
		if tok, ok := c.tokens.get(scope, c.now()); ok && tok != stale {
			return tok, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenTimeout)
		defer cancel()
		t, err := c.fetchToken(fctx, ch, scope)
		if err != nil {
			return "", err
		}
		c.tokens.put(scope, t, c.now())
		return t.value, nil
	})
	select {
	case <-ctx.Done():
		return "", c.transportError(ctx.Err())
	case r := <-flight:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}

// fetchToken asks the challenge's realm for a token for scope, with the
// configured credentials if any.
func (c *Client) fetchToken(ctx context.Context, ch challenge, scope string) (token, error) {
	realm, err := c.realmURL(ch.params["realm"])
	if err != nil {
		return token{}, err
	}
	q := realm.Query()
	if service := ch.params["service"]; service != "" {
		q.Set("service", service)
	}
	for _, sc := range strings.Fields(scope) { // a mount asks for two
		q.Add("scope", sc)
	}
	realm.RawQuery = q.Encode()

	auth := ""
	if c.username != "" {
		auth = c.basicAuth()
	}
	resp, err := c.send(ctx, http.MethodGet, "token", realm.String(), nil, auth)
	if err != nil {
		return token{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := c.statusError(resp)
		e.Message = joinMessage("token realm "+realm.Host, e.Message)
		return token{}, e
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody+1))
	if err != nil {
		return token{}, err // an *Error from idleBody, or a transport error
	}
	if len(body) > maxTokenBody {
		return token{}, c.realmError(realm, "token response larger than 1 MiB")
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return token{}, c.realmError(realm, "malformed token response")
	}
	value := tr.Token
	if value == "" {
		value = tr.AccessToken
	}
	if value == "" {
		return token{}, c.realmError(realm, "token response without a token")
	}
	lifetime := defaultTokenLifetime
	if tr.ExpiresIn > 0 {
		lifetime = time.Duration(tr.ExpiresIn) * time.Second
	}
	// Expire early so that a token is not sent in its last seconds and
	// refused on arrival.
	lifetime -= min(lifetime/10, 30*time.Second)
	return token{value: value, expires: c.now().Add(lifetime)}, nil
}

// realmURL parses and vets a challenge's realm. The realm may be on another
// host (Docker Hub's is auth.docker.io), but it must not downgrade an https
// upstream to http: the credentials and token would cross in clear text.
func (c *Client) realmURL(realm string) (*url.URL, error) {
	if realm == "" {
		return nil, &Error{Upstream: c.name, Status: http.StatusUnauthorized, Message: "bearer challenge without a realm"}
	}
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, &Error{Upstream: c.name, Status: http.StatusUnauthorized, Message: "bearer challenge with an invalid realm"}
	}
	if c.base.Scheme == "https" && u.Scheme != "https" {
		return nil, &Error{Upstream: c.name, Status: http.StatusUnauthorized,
			Message: fmt.Sprintf("refusing token realm %s: http realm for an https upstream", u.Host)}
	}
	return u, nil
}

func (c *Client) realmError(realm *url.URL, msg string) *Error {
	return &Error{Upstream: c.name, Message: "token realm " + realm.Host + ": " + msg}
}
