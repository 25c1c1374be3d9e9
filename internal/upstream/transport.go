package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/entrepot/entrepot/internal/config"
)

// maxRedirects bounds a redirect chain (a blob redirects once, to its CDN).
const maxRedirects = 5

// NewTransport returns the transport New uses when given none: dialing and
// the TLS handshake bounded by ConnectTimeout, the wait for response
// headers by ResponseHeaderTimeout, a pool sized for parallel layer pulls
// from a few hosts, and HTTP/2 when the server offers it. It uses no proxy
// from the environment: the cache contacts only its configured upstreams.
func NewTransport(cfg config.Upstream) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// checkRedirect is the client's redirect policy. net/http copies the first
// request's headers to each redirect, and its own rule would still send
// Authorization from host:5000 to host:9000 (it compares names, not ports)
// or to a subdomain. So Authorization goes only to the exact scheme and
// host of the first request: the upstream, or the token realm for a token
// fetch. Credentials are set on the request, never by a RoundTripper,
// which would also run for the redirects.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	first := via[0].URL
	if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		req.Header.Del("Authorization")
	}
	// The upstream's URL is none of the CDN's business.
	req.Header.Del("Referer")
	return nil
}

// idleBody is a response body that gives up when no byte arrives for idle
// (0: never) while the caller reads: a stalled upstream must not hang a fill forever.
// The clock runs only inside Read, so a caller that pauses between reads
// (its own client is slow) is not mistaken for a stalled upstream. Read
// errors other than io.EOF are *Error values naming the upstream.
type idleBody struct {
	rc       io.ReadCloser
	idle     time.Duration
	upstream string
	cancel   context.CancelFunc // aborts the request
	failed   func()             // called when a read fails: the upstream's fault
	received func(n int)        // told of the bytes of each read
	timer    *time.Timer        // armed during Read; fires cancel
	stalled  atomic.Bool        // set when the timer fired
}

func newIdleBody(rc io.ReadCloser, idle time.Duration, cancel context.CancelFunc, upstream string, failed func(), received func(int)) *idleBody {
	b := &idleBody{rc: rc, idle: idle, upstream: upstream, cancel: cancel, failed: failed, received: received}
	if idle > 0 {
		b.timer = time.AfterFunc(idle, func() {
			b.stalled.Store(true)
			cancel()
		})
		b.timer.Stop()
	}
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.timer != nil {
		b.timer.Reset(b.idle)
	}
	n, err := b.rc.Read(p)
	if b.timer != nil {
		b.timer.Stop()
	}
	if n > 0 {
		b.received(n)
	}
	switch {
	case err == nil || err == io.EOF: // io.EOF unwrapped, as io.Reader promises
		return n, err
	case b.stalled.Load():
		b.failed()
		return n, &Error{Upstream: b.upstream, Err: fmt.Errorf("%w: no data for %s", ErrStalled, b.idle)}
	default:
		b.failed()
		return n, &Error{Upstream: b.upstream, Err: err}
	}
}

// Close closes the body and releases the request's context.
func (b *idleBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	err := b.rc.Close()
	b.cancel()
	return err
}
