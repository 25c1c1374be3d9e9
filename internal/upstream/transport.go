package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
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
// It refuses to connect where the upstream has no business sending the
// cache (see dialPolicy).
func NewTransport(cfg config.Upstream) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return newTransport(cfg, newDialPolicy(cfg, dialer))
}

func newTransport(cfg config.Upstream, p *dialPolicy) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.dial,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// addrClass is how near the cache an address is. The classes are ordered:
// each needs more trust in the upstream than the one before.
type addrClass int

const (
	classPublic   addrClass = iota
	classPrivate            // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7
	classLoopback           // 127/8, ::1
	// classNever: link-local (where the cloud metadata services are:
	// 169.254.169.254, fd00:ec2::254), unspecified, 0/8 (Linux connects
	// 0.0.0.0 to the local host), multicast and broadcast.
	classNever
)

func (c addrClass) String() string {
	return [...]string{"public", "private", "loopback", "forbidden"}[c]
}

var (
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	awsMetadata = netip.MustParseAddr("fd00:ec2::254") // IPv6 twin of 169.254.169.254, though not link-local
	broadcast   = netip.MustParseAddr("255.255.255.255")
)

// classify returns ip's class and, unless public, what it is in words.
// An IPv4-mapped IPv6 address is its IPv4 address.
func classify(ip netip.Addr) (addrClass, string) {
	ip = ip.Unmap().WithZone("")
	switch {
	case ip.IsLinkLocalUnicast() || ip == awsMetadata:
		return classNever, "link-local/metadata address"
	case ip.IsUnspecified() || thisNetwork.Contains(ip):
		return classNever, "unspecified address"
	case ip.IsMulticast() || ip == broadcast:
		return classNever, "multicast/broadcast address"
	case ip.IsLoopback():
		return classLoopback, "loopback address"
	case ip.IsPrivate() || cgnat.Contains(ip):
		return classPrivate, "private address"
	}
	return classPublic, ""
}

// dialPolicy decides which addresses one upstream's transport connects to.
// It checks the address a socket is about to connect to, not a URL, so a
// redirect, a token realm and a name that resolves somewhere unexpected
// (DNS rebinding) are all covered:
//
//   - a forbidden address (classNever) is refused always, even for the
//     upstream's own host;
//   - the upstream's own host:port may be on any other address: the
//     operator configured it, and a registry on the cache's own host or
//     network is common;
//   - any other host (a blob's CDN, a token realm) may be on a public
//     address; on a private one only when the upstream itself is on a
//     private or loopback address, and on a loopback one only when the
//     upstream is on loopback. A public registry has no business sending
//     the cache to the services of its own host or network.
//
// A refusal is an *Error with Status 0, like any failure to connect.
type dialPolicy struct {
	upstream string // configured name, for errors
	own      string // the upstream's host:port, as the transport dials it
	// home is the class of the address the upstream itself is on. It is
	// asked only when another host is on a private or loopback address.
	home func(ctx context.Context) addrClass
	// dialer connects; its ControlContext, if any, runs after the check.
	dialer *net.Dialer
}

func newDialPolicy(cfg config.Upstream, dialer *net.Dialer) *dialPolicy {
	host, port := cfg.URL.Hostname(), cfg.URL.Port()
	if port == "" {
		port = "80"
		if cfg.URL.Scheme == "https" {
			port = "443"
		}
	}
	return &dialPolicy{
		upstream: cfg.Name,
		own:      net.JoinHostPort(host, port),
		home:     func(ctx context.Context) addrClass { return homeClass(ctx, dialer.Resolver, host) },
		dialer:   dialer,
	}
}

// homeClass is the class of host, an upstream's: an IP literal's own, or
// the nearest of the addresses a name resolves to now (it is looked up
// again each time: a name's addresses change). A forbidden address or a
// failed lookup counts as public, which trusts least.
func homeClass(ctx context.Context, r *net.Resolver, host string) addrClass {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if r == nil {
		ips, _ = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	} else {
		ips, _ = r.LookupNetIP(ctx, "ip", host)
	}
	home := classPublic
	for _, ip := range ips {
		if c, _ := classify(ip); c != classNever && c > home {
			home = c
		}
	}
	return home
}

// dial is the transport's DialContext. An IP literal is checked before a
// socket exists; a name is checked for each address it resolves to, just
// before connecting, so that what is checked is what is connected to.
func (p *dialPolicy) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := p.check(ctx, address, host, ip); err != nil {
			return nil, err
		}
		return p.dialer.DialContext(ctx, network, address)
	}
	d := *p.dialer
	next := d.ControlContext
	d.ControlContext = func(ctx context.Context, network, resolved string, c syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(resolved)
		if err != nil {
			return &Error{Upstream: p.upstream, Message: fmt.Sprintf("refusing to connect to %s at %q: not an IP address", host, resolved)}
		}
		if err := p.check(ctx, address, host, ap.Addr()); err != nil {
			return err
		}
		if next != nil {
			return next(ctx, network, resolved, c)
		}
		return nil
	}
	return d.DialContext(ctx, network, address)
}

// check refuses ip, an address of host, the host of the dialed address
// (host:port), if the policy does not allow it.
func (p *dialPolicy) check(ctx context.Context, address, host string, ip netip.Addr) error {
	class, what := classify(ip)
	if class == classPublic || class != classNever && strings.EqualFold(address, p.own) {
		return nil
	}
	if class != classNever {
		home := p.home(ctx)
		if class <= home {
			return nil
		}
		what += fmt.Sprintf(", and the upstream is on a %s one", home)
	}
	target := host
	if ip.String() != host {
		target = host + " at " + ip.String()
	}
	return &Error{Upstream: p.upstream, Message: "refusing to connect to " + target + ": " + what}
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
