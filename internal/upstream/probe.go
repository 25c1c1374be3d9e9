package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
)

// ProbeState is what a probe found of an upstream, in one word.
type ProbeState string

const (
	ProbeOK          ProbeState = "ok"
	ProbeUnreachable ProbeState = "unreachable" // no answer: DNS, connection, timeout
	ProbeTLSError    ProbeState = "tls-error"   // the handshake or the certificate's verification failed
	ProbeAuthFailed  ProbeState = "auth-failed" // the credentials, or the token realm, were refused
	// ProbeRateLimited is a 429, or a budget with nothing left: the
	// upstream works again once its window renews.
	ProbeRateLimited ProbeState = "rate-limited"
	// ProbeError is an answer that is not a registry's: a 5xx, a 404 for
	// /v2/.
	ProbeError ProbeState = "error"
)

// How a probe authenticated (ProbeResult.Auth).
const (
	// AuthAnonymous: no credentials were sent, because none were asked
	// for or none are configured (an anonymous bearer token).
	AuthAnonymous = "anonymous"
	// AuthToken: a bearer token fetched with the configured credentials.
	AuthToken = "token"
	// AuthBasic: the configured credentials, as basic auth.
	AuthBasic = "basic"
	// AuthFailed: the upstream or its token realm refused.
	AuthFailed = "failed"
)

// probeRepo is the repository whose pull scope a probe asks a token for
// when given none, and on Docker Hub the one whose probeTag it HEADs: an
// official image that every account and every anonymous client may pull.
const (
	probeRepo = "library/alpine"
	probeTag  = "latest"
)

// ProbeResult is what Probe found of the upstream.
type ProbeResult struct {
	State ProbeState
	// TLS is the connection's, nil for plain http or when no handshake
	// completed.
	TLS *TLSInfo
	// Auth is AuthAnonymous, AuthToken, AuthBasic or AuthFailed; "" when
	// the probe did not get that far.
	Auth string
	// Budget is the rate-limit budget as the answers announced it (Seen
	// is zero when none did).
	Budget Budget
	// Err says what failed, or why the upstream is rate-limited; nil when
	// the state is ok. Like every error of the client, it holds no
	// credential.
	Err error
}

// Usable tells whether the cache can work with the upstream. A
// rate-limited upstream is usable: the cache serves what it holds, and
// the upstream answers again once its window renews.
func (r ProbeResult) Usable() bool { return r.State == ProbeOK || r.State == ProbeRateLimited }

// TLSInfo is what a probe learnt of the upstream's TLS. The certificate
// was verified: a failed verification is a ProbeTLSError.
type TLSInfo struct {
	Version string    // as "TLS1.3"
	Expires time.Time // the server certificate's NotAfter
}

// Probe checks that the upstream can be used, as a pull of repo (or, for
// "", of library/alpine) would use it, and says what it found. It sends
// GET /v2/ without credentials, as clients do to learn how a registry
// authenticates, and records the connection's TLS; answers the challenge
// with a bearer token for the pull scope of repo or with basic auth, with
// the configured credentials if any; and, on Docker Hub or when given a
// repo, sends a HEAD for repo:latest, which reads the rate-limit budget
// without spending any of it. A 404 for that manifest still shows the
// upstream answering the pull's credentials. Elsewhere no manifest is
// asked for: a registry may answer 401 or 403 for a repository it does
// not have, which would read as refused credentials.
//
// Nothing is retried, a 429 least of all. ctx bounds the whole probe.
func (c *Client) Probe(ctx context.Context, repo string) ProbeResult {
	var r ProbeResult
	r.State, r.Err = c.probe(ctx, repo, &r)
	r.Budget = c.Budget()
	if r.State == ProbeAuthFailed {
		r.Auth = AuthFailed
	}
	return r
}

// probe runs the steps of Probe, filling r's TLS and Auth on its way, and
// returns the state and error they end in.
func (c *Client) probe(ctx context.Context, repo string, r *ProbeResult) (ProbeState, error) {
	head := repo != "" || c.DockerHub()
	if repo == "" {
		repo = probeRepo
	}
	if !oci.ValidName(repo) {
		return ProbeError, fmt.Errorf("upstream %q: invalid repository name %q", c.name, repo)
	}
	if until := c.health.BlockedUntil(); !until.IsZero() {
		return ProbeRateLimited, c.blockedError(until)
	}

	challenges, challenged, err := c.ping(ctx, r)
	if err != nil {
		return probeState(err, ProbeError), err
	}
	r.Auth = AuthAnonymous
	if challenged {
		if r.Auth, err = c.authenticate(ctx, challenges, repo); err != nil {
			return probeState(err, ProbeAuthFailed), err
		}
	}
	if head {
		if err := c.probeManifest(ctx, repo); err != nil {
			return probeState(err, ProbeError), err
		}
	}
	if b := c.Budget(); !b.Seen.IsZero() && b.Remaining == 0 {
		return ProbeRateLimited, &Error{Upstream: c.name, Message: fmt.Sprintf("rate-limit budget spent: 0 of %d left", b.Limit)}
	}
	return ProbeOK, nil
}

// ping sends GET /v2/ without credentials and records the connection's
// TLS in r. challenged tells whether the answer was a 401, and challenges
// are its WWW-Authenticate challenges.
func (c *Client) ping(ctx context.Context, r *ProbeResult) (challenges []challenge, challenged bool, err error) {
	resp, err := c.send(ctx, http.MethodGet, "ping", c.pingURL(), nil, "")
	if err != nil {
		return nil, false, err
	}
	r.TLS = tlsInfo(resp.TLS)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		challenges = parseChallenges(resp.Header.Values("WWW-Authenticate"))
		discard(resp)
		return challenges, true, nil
	case resp.StatusCode >= 300:
		return nil, false, c.statusError(resp)
	}
	discard(resp)
	return nil, false, nil
}

func (c *Client) pingURL() string { return c.base.JoinPath("v2/").String() }

// authenticate answers the ping's challenges as a pull of repo would, and
// returns how it authenticated.
func (c *Client) authenticate(ctx context.Context, challenges []challenge, repo string) (string, error) {
	if ch, ok := findChallenge(challenges, "bearer"); ok {
		if _, err := c.token(ctx, ch, "repository:"+repo+":pull", ""); err != nil {
			return "", err
		}
		if c.username == "" {
			return AuthAnonymous, nil
		}
		return AuthToken, nil
	}
	if _, ok := findChallenge(challenges, "basic"); !ok {
		return "", &Error{Upstream: c.name, Status: http.StatusUnauthorized, Message: "401 without a bearer or basic challenge"}
	}
	if c.username == "" {
		return "", &Error{Upstream: c.name, Status: http.StatusUnauthorized, Message: "basic auth required, and no credentials configured"}
	}
	resp, err := c.send(ctx, http.MethodGet, "ping", c.pingURL(), nil, c.basicAuth())
	if err != nil {
		return "", err
	}
	if resp.StatusCode >= 300 {
		return "", c.statusError(resp)
	}
	discard(resp)
	c.useBasic.Store(true) // as authorize does: later requests send it up front
	return AuthBasic, nil
}

// probeManifest sends a HEAD for repo:probeTag, free of Docker Hub's rate
// limit, whose answer carries the budget. A 404 is success: the upstream
// answered with the pull's credentials.
func (c *Client) probeManifest(ctx context.Context, repo string) error {
	resp, err := c.Do(ctx, http.MethodHead, repo, "manifests/"+probeTag, nil, acceptManifests)
	if errors.Is(err, oci.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// probeState names the state err leaves the upstream in; other is the
// state of an answer that says nothing more precise, such as a 5xx.
func probeState(err error, other ProbeState) ProbeState {
	var e *Error
	switch {
	case !errors.As(err, &e):
		return other
	case e.Status == 0 && e.Err != nil && tlsFailure(e.Err):
		return ProbeTLSError
	case e.Status == 0 && e.Err != nil:
		return ProbeUnreachable
	case e.Status == http.StatusTooManyRequests:
		return ProbeRateLimited
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden:
		return ProbeAuthFailed
	}
	return other
}

// tlsFailure tells whether a transport failure is TLS's: a certificate
// that does not verify, a server that does not speak TLS, a refused
// handshake.
func tlsFailure(err error) bool {
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	return errors.As(err, &verify) || errors.As(err, &record) || describe(err) == "TLS handshake failed" ||
		// net/http's own error, unexported, for an https URL whose
		// server answers in plain http.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// tlsInfo is what cs says of the connection; nil for plain http.
func tlsInfo(cs *tls.ConnectionState) *TLSInfo {
	if cs == nil {
		return nil
	}
	info := &TLSInfo{Version: strings.ReplaceAll(tls.VersionName(cs.Version), " ", "")}
	if len(cs.PeerCertificates) > 0 {
		info.Expires = cs.PeerCertificates[0].NotAfter
	}
	return info
}

// discard reads what is left of a small body, capped, so that the
// connection can be reused, and closes it.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}
