package upstream

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/entrepot/entrepot/internal/config"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want addrClass
	}{
		{"169.254.169.254", classNever},
		{"169.254.0.1", classNever},
		{"::ffff:169.254.169.254", classNever},
		{"fe80::1", classNever},
		{"fe80::1%eth0", classNever},
		{"febf::1", classNever},
		{"fd00:ec2::254", classNever},
		{"0.0.0.0", classNever},
		{"0.1.2.3", classNever},
		{"::", classNever},
		{"224.0.0.1", classNever},
		{"239.255.255.250", classNever},
		{"ff02::1", classNever},
		{"255.255.255.255", classNever},
		{"127.0.0.1", classLoopback},
		{"127.5.6.7", classLoopback},
		{"::1", classLoopback},
		{"::ffff:127.0.0.1", classLoopback},
		{"10.1.2.3", classPrivate},
		{"172.16.0.1", classPrivate},
		{"172.31.255.255", classPrivate},
		{"192.168.1.1", classPrivate},
		{"100.64.0.1", classPrivate},
		{"100.127.255.255", classPrivate},
		{"::ffff:10.0.0.1", classPrivate},
		{"fc00::1", classPrivate},
		{"fd00:ec2::253", classPrivate},
		{"172.32.0.1", classPublic},
		{"100.128.0.1", classPublic},
		{"169.255.0.1", classPublic},
		{"8.8.8.8", classPublic},
		{"2001:db8::1", classPublic},
		{"fec0::1", classPublic}, // deprecated site-local: not routed anyway
	} {
		if got, _ := classify(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("classify(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

func TestHomeClass(t *testing.T) {
	r := fakeResolver(map[string][]netip.Addr{
		"registry.test": {netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("10.0.0.5")},
		"public.test":   {netip.MustParseAddr("203.0.113.5")},
		"metadata.test": {netip.MustParseAddr("169.254.169.254")},
		"local.test":    {netip.MustParseAddr("127.0.0.1")},
	})
	for _, tc := range []struct {
		host string
		want addrClass
	}{
		{"127.0.0.1", classLoopback},
		{"::1", classLoopback},
		{"10.0.0.1", classPrivate},
		{"8.8.8.8", classPublic},
		{"169.254.169.254", classPublic}, // a forbidden upstream trusts least
		{"local.test", classLoopback},
		{"registry.test", classPrivate}, // the nearest of its addresses
		{"public.test", classPublic},
		{"metadata.test", classPublic},
		{"nxdomain.test", classPublic}, // a failed lookup trusts least
	} {
		if got := homeClass(context.Background(), r, tc.host); got != tc.want {
			t.Errorf("homeClass(%s) = %s, want %s", tc.host, got, tc.want)
		}
	}
}

// A redirect to a link-local, metadata, unspecified or multicast address
// is refused even for an upstream on loopback, the most trusted: no
// connection is attempted, and the refusal is final.
func TestRedirectToForbiddenAddressRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		location string // "" is the upstream's own port on 0.0.0.0
		dialed   string // the address the transport asks for
		want     string // the end of the error
	}{
		{"metadata", "http://169.254.169.254/latest/meta-data/", "169.254.169.254:80",
			`refusing to connect to 169.254.169.254: link-local/metadata address`},
		{"metadata IPv6", "http://[fd00:ec2::254]/latest/meta-data/", "[fd00:ec2::254]:80",
			`refusing to connect to fd00:ec2::254: link-local/metadata address`},
		{"IPv4-mapped metadata", "http://[::ffff:169.254.169.254]/", "[::ffff:169.254.169.254]:80",
			`refusing to connect to ::ffff:169.254.169.254: link-local/metadata address`},
		{"IPv6 link-local", "http://[fe80::1]:8080/", "[fe80::1]:8080",
			`refusing to connect to fe80::1: link-local/metadata address`},
		{"IPv6 link-local with zone", "http://[fe80::1%25eth0]/", "[fe80::1%eth0]:80",
			`refusing to connect to fe80::1%eth0: link-local/metadata address`},
		{"unspecified", "", "",
			`: unspecified address`},
		{"multicast", "http://224.0.0.251/", "224.0.0.251:80",
			`refusing to connect to 224.0.0.251: multicast/broadcast address`},
		{"name resolving to metadata", "https://metadata.test/", "metadata.test:443",
			`refusing to connect to metadata.test at 169.254.169.254: link-local/metadata address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits int
			var mu sync.Mutex // protects hits
			var location string
			up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits++
				mu.Unlock()
				http.Redirect(w, r, location, http.StatusTemporaryRedirect)
			}))
			location, dialed := tc.location, tc.dialed
			if location == "" {
				// 0.0.0.0 would reach the upstream itself on Linux.
				_, port, _ := net.SplitHostPort(upstreamAddr(up))
				location, dialed = "http://0.0.0.0:"+port+"/", "0.0.0.0:"+port
			}
			up.Start()
			t.Cleanup(up.Close)
			c, guard := newGuardedClient(t, up.URL, nil, up)

			_, err := c.Do(context.Background(), http.MethodGet, "a/b", "blobs/sha256:00", nil, nil)
			e := asError(t, err)
			if e.Status != 0 || !strings.HasSuffix(e.Error(), tc.want) || !strings.HasPrefix(e.Error(), `upstream "test": refusing to connect to `) {
				t.Errorf("got %q, want a refusal ending %q", e, tc.want)
			}
			if tc.name == "metadata" && e.Error() != `upstream "test": refusing to connect to 169.254.169.254: link-local/metadata address` {
				t.Errorf("got %q", e)
			}
			if e.Public() != e.Error() {
				t.Errorf("Public() = %q, want the same words as Error()", e.Public())
			}
			guard.assertDialed(t, upstreamAddr(up), dialed) // once each: nothing retried
			guard.assertConnected(t, upstreamAddr(up))
			mu.Lock()
			defer mu.Unlock()
			if hits != 1 {
				t.Errorf("upstream got %d requests, want 1", hits)
			}
		})
	}
}

// An upstream whose own name resolves to a forbidden address is refused
// too: the operator cannot have meant it, or its DNS was subverted.
func TestUpstreamOnForbiddenAddressRefused(t *testing.T) {
	c, guard := newGuardedClient(t, "https://metadata.test/", nil)
	_, err := c.Do(context.Background(), http.MethodGet, "a/b", "manifests/latest", nil, nil)
	e := asError(t, err)
	if want := `upstream "test": refusing to connect to metadata.test at 169.254.169.254: link-local/metadata address`; e.Error() != want {
		t.Errorf("got %q, want %q", e, want)
	}
	guard.assertDialed(t, "metadata.test:443")
	guard.assertConnected(t)
}

// Another host may be on an address no nearer the cache than the
// upstream's own: a public upstream may send the cache to public
// addresses only, a private one to private ones too, and only one on
// loopback to loopback. The upstream itself is reached whatever its class
// is declared to be.
func TestRedirectNoNearerThanUpstream(t *testing.T) {
	const blob = "layer bytes"
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, blob)
	}))
	t.Cleanup(cdn.Close)
	_, cdnPort, _ := net.SplitHostPort(upstreamAddr(cdn))

	for _, tc := range []struct {
		name     string
		home     addrClass
		location string
		// connected: the policy let it through to the test's dialer, which
		// connects to the CDN only. Otherwise refused, with this error.
		connected string
		refused   string
	}{
		{"public to loopback", classPublic, cdn.URL, "",
			"refusing to connect to 127.0.0.1: loopback address, and the upstream is on a public one"},
		{"public to a name on loopback", classPublic, "http://cdn.test:" + cdnPort, "",
			"refusing to connect to cdn.test at 127.0.0.1: loopback address, and the upstream is on a public one"},
		{"public to private", classPublic, "http://10.1.2.3/", "",
			"refusing to connect to 10.1.2.3: private address, and the upstream is on a public one"},
		{"public to CGNAT", classPublic, "http://100.100.100.200/", "",
			"refusing to connect to 100.100.100.200: private address, and the upstream is on a public one"},
		{"public to a name on private", classPublic, "http://lan.test/", "",
			"refusing to connect to lan.test at 192.168.1.1: private address, and the upstream is on a public one"},
		{"private to loopback", classPrivate, cdn.URL, "",
			"refusing to connect to 127.0.0.1: loopback address, and the upstream is on a private one"},
		{"public to public", classPublic, "http://203.0.113.7/", "203.0.113.7:80", ""},
		{"private to private", classPrivate, "http://192.168.1.1/", "192.168.1.1:80", ""},
		{"private to a name on private", classPrivate, "http://lan.test/", "192.168.1.1:80", ""},
		{"loopback to private", classLoopback, "http://10.1.2.3/", "10.1.2.3:80", ""},
		{"loopback to loopback", classLoopback, cdn.URL, upstreamAddr(cdn), ""},
		{"loopback to a name on loopback", classLoopback, "http://cdn.test:" + cdnPort, upstreamAddr(cdn), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, tc.location, http.StatusTemporaryRedirect)
			}))
			t.Cleanup(up.Close)
			c, guard := newGuardedClient(t, up.URL, func(p *dialPolicy) {
				p.home = func(context.Context) addrClass { return tc.home }
			}, up, cdn)

			resp, err := c.Do(context.Background(), http.MethodGet, "a/b", "blobs/sha256:00", nil, nil)
			switch {
			case tc.refused != "":
				if e := asError(t, err); e.Status != 0 || e.Message != tc.refused {
					t.Errorf("got %q, want the message %q", e, tc.refused)
				}
				guard.assertConnected(t, upstreamAddr(up))
			case tc.connected == upstreamAddr(cdn):
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, resp); got != blob {
					t.Errorf("body %q, want %q", got, blob)
				}
				guard.assertConnected(t, upstreamAddr(up), tc.connected)
			default:
				// Let through by the policy; the test's dialer refused it.
				if !errors.Is(err, errNotTestServer) {
					t.Errorf("got %v, want the test dialer's refusal", err)
				}
				guard.assertConnected(t, upstreamAddr(up), tc.connected)
			}
		})
	}
}

// Each upstream's credentials reach its own host and the token realm its
// own challenge names, and nothing else: not the blob's CDN, not a host
// the realm redirects to, not another upstream or its realm, even on the
// same host name and another port (net/http alone would send them there),
// and not another upstream's CDN that happens to be shared.
//
// The realm named in an upstream's challenge gets its credentials even
// when it is on another host (Docker Hub's is auth.docker.io): the
// upstream says where its credentials go, as the token protocol wants.
// No upstream can make the cache send another's: each client holds its
// own credentials and tokens, and nothing is looked up by host.
func TestCredentialsStayWithTheirUpstream(t *testing.T) {
	hosts := &hostLog{auths: map[string][]string{}}
	cdnA := hosts.server(t, "cdnA", serveBlob)
	cdnB := hosts.server(t, "cdnB", serveBlob)

	// A: a token registry whose realm redirects to the real token server.
	tokA := &tokenServer{scopes: map[string]string{}}
	tokA.Server = hosts.server(t, "tokenA", tokA.serveToken)
	realmA := hosts.server(t, "realmA", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, tokA.URL+"/token?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
	})
	regA := hosts.server(t, "regA", tokenRegistry(tokA, realmA.URL+"/token", cdnA.URL))

	// B: a token registry whose realm wants B's credentials. Its tokens
	// are numbered apart from A's.
	tokB := &tokenServer{scopes: map[string]string{}, user: "bob", password: "pw-b"}
	tokB.fetches.Store(1000)
	tokB.Server = hosts.server(t, "tokenB", tokB.serveToken)
	regB := hosts.server(t, "regB", tokenRegistry(tokB, tokB.URL+"/token", cdnB.URL))

	// C: a basic-auth registry whose blobs are on A's CDN.
	regC := hosts.server(t, "regC", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "carol" || p != "pw-c" {
			w.Header().Set("WWW-Authenticate", `Basic realm="regC"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		serveContent(w, r, cdnA.URL)
	})

	all := []*httptest.Server{cdnA, cdnB, tokA.Server, realmA, regA, tokB.Server, regB, regC}
	clients := map[string]*Client{}
	for name, up := range map[string]struct {
		srv        *httptest.Server
		user, pass string
	}{"A": {regA, "alice", "pw-a"}, "B": {regB, "bob", "pw-b"}, "C": {regC, "carol", "pw-c"}} {
		c, _ := newGuardedClient(t, up.srv.URL, nil, all...)
		c.username, c.password = up.user, config.Secret(up.pass)
		clients[name] = c
	}
	for _, name := range []string{"A", "B", "C", "A", "B", "C"} { // again, with tokens and basic auth known
		for _, path := range []string{"manifests/latest", "blobs/sha256:00"} {
			for _, repo := range []string{"team/one", "team/two"} {
				resp, err := clients[name].Do(context.Background(), http.MethodGet, repo, path, nil, nil)
				if err != nil {
					t.Fatalf("%s: %s %s: %v", name, repo, path, err)
				}
				readAll(t, resp)
			}
		}
	}

	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	a, b, c := basic("alice", "pw-a"), basic("bob", "pw-b"), basic("carol", "pw-c")
	issuedBy := func(ts *tokenServer) func(string) bool {
		return func(v string) bool {
			tok, ok := strings.CutPrefix(v, "Bearer ")
			var issued bool
			ts.set(func(ts *tokenServer) { _, issued = ts.scopes[tok] })
			return ok && issued
		}
	}
	is := func(want string) func(string) bool { return func(v string) bool { return v == want } }
	for _, tc := range []struct {
		host    string
		allowed func(string) bool // besides no Authorization at all
		needs   string            // must have been received, so that the test proves something
	}{
		{"regA", issuedBy(tokA), ""},
		{"realmA", is(a), a},
		{"tokenA", nil, ""},
		{"cdnA", nil, ""},
		{"regB", issuedBy(tokB), ""},
		{"tokenB", is(b), b},
		{"cdnB", nil, ""},
		{"regC", is(c), c},
	} {
		got := hosts.received(tc.host)
		if len(got) == 0 {
			t.Errorf("%s received no request", tc.host)
		}
		for _, v := range got {
			if v != "" && (tc.allowed == nil || !tc.allowed(v)) {
				t.Errorf("%s received Authorization %q", tc.host, v)
			}
		}
		if tc.needs != "" && !slices.Contains(got, tc.needs) {
			t.Errorf("%s never received its upstream's credentials", tc.host)
		}
	}
}

// errNotTestServer is the test dialer's refusal of an address that is
// none of the test's servers.
var errNotTestServer = errors.New("test dialer: not a test server")

// dialGuard is the dialer under the policy in tests. It records every
// address the transport asks to dial, and every address the policy lets
// through, and connects only to the test's own servers: the tests never
// send a packet anywhere else, even when the policy is wrong.
type dialGuard struct {
	servers map[string]bool // host:port of the test's servers

	mu        sync.Mutex // protects the fields below
	dialed    []string   // asked for by the transport, before the policy
	connected []string   // let through by the policy, resolved
}

// newGuardedClient returns a client named "test" for rawURL with the
// transport NewTransport builds, on a dialer that connects only to
// servers and resolves names with testNames; edit may change the policy.
func newGuardedClient(t *testing.T, rawURL string, edit func(*dialPolicy), servers ...*httptest.Server) (*Client, *dialGuard) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	g := &dialGuard{servers: map[string]bool{}}
	for _, s := range servers {
		g.servers[upstreamAddr(s)] = true
	}
	cfg := config.Upstream{Name: "test", URL: u}
	p := newDialPolicy(cfg, &net.Dialer{Resolver: fakeResolver(testNames), ControlContext: g.control})
	if edit != nil {
		edit(p)
	}
	tr := newTransport(cfg, p)
	t.Cleanup(tr.CloseIdleConnections)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		g.mu.Lock()
		g.dialed = append(g.dialed, address)
		g.mu.Unlock()
		return dial(ctx, network, address)
	}
	c, _, _ := newTestClient(t, rawURL, tr, nil)
	return c, g
}

// control runs just before a socket connects, after the policy's check.
func (g *dialGuard) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.connected = append(g.connected, address)
	if !g.servers[address] {
		return errNotTestServer
	}
	return nil
}

// assertDialed checks the addresses the transport asked for, in order.
func (g *dialGuard) assertDialed(t *testing.T, want ...string) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Equal(g.dialed, want) {
		t.Errorf("dialed %q, want %q", g.dialed, want)
	}
}

// assertConnected checks the addresses the policy let through, in order.
func (g *dialGuard) assertConnected(t *testing.T, want ...string) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Equal(g.connected, want) {
		t.Errorf("connected to %q, want %q", g.connected, want)
	}
}

func upstreamAddr(s *httptest.Server) string { return s.Listener.Addr().String() }

// testNames are the names the tests' resolver knows.
var testNames = map[string][]netip.Addr{
	"metadata.test": {netip.MustParseAddr("169.254.169.254")},
	"cdn.test":      {netip.MustParseAddr("127.0.0.1")},
	"lan.test":      {netip.MustParseAddr("192.168.1.1")},
}

// fakeResolver answers from names (lower case, without the final dot),
// and "no such host" for any other name, without a packet on the network.
func fakeResolver(names map[string][]netip.Addr) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveDNS(server, names)
		return client, nil
	}}
}

// serveDNS answers one query on conn. Over a conn that is no PacketConn,
// Go's resolver frames each message as over TCP: a 2-byte length first.
func serveDNS(conn net.Conn, names map[string][]netip.Addr) {
	defer conn.Close()
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return
	}
	q := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(conn, q); err != nil || len(q) < 12 {
		return
	}
	// The question follows the 12-byte header: the name as labels, a zero
	// byte, the type and the class.
	end := 12
	var labels []string
	for end < len(q) && q[end] != 0 {
		n := int(q[end])
		if end+1+n > len(q) {
			return
		}
		labels = append(labels, string(q[end+1:end+1+n]))
		end += 1 + n
	}
	end += 5
	if end > len(q) {
		return
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	addrs, known := names[strings.ToLower(strings.Join(labels, "."))]
	var answers [][]byte
	for _, a := range addrs {
		if a.Is4() && qtype == 1 || a.Is6() && qtype == 28 { // A, AAAA
			answers = append(answers, a.AsSlice())
		}
	}
	flags := uint16(0x8580) // a response, authoritative, recursion desired and available
	if !known {
		flags |= 3 // no such name
	}
	m := append([]byte(nil), q[:2]...) // the query's id
	m = binary.BigEndian.AppendUint16(m, flags)
	m = binary.BigEndian.AppendUint16(m, 1) // one question
	m = binary.BigEndian.AppendUint16(m, uint16(len(answers)))
	m = append(m, 0, 0, 0, 0) // no authority, no additional records
	m = append(m, q[12:end]...)
	for _, rdata := range answers {
		m = append(m, 0xc0, 12) // the question's name
		m = binary.BigEndian.AppendUint16(m, qtype)
		m = binary.BigEndian.AppendUint16(m, 1) // IN
		m = binary.BigEndian.AppendUint32(m, 60)
		m = binary.BigEndian.AppendUint16(m, uint16(len(rdata)))
		m = append(m, rdata...)
	}
	conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...))
}

// hostLog records the Authorization header of every request each of the
// test's hosts receives.
type hostLog struct {
	mu    sync.Mutex          // protects auths
	auths map[string][]string // host -> Authorization values, "" for none
}

func (h *hostLog) server(t *testing.T, host string, serve http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.auths[host] = append(h.auths[host], r.Header.Get("Authorization"))
		h.mu.Unlock()
		serve(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (h *hostLog) received(host string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.auths[host])
}

// tokenRegistry is a registry that wants a token from ts for the
// repository of each request, naming realm in its challenge.
func tokenRegistry(ts *tokenServer, realm, cdn string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		repo := repoOf(r.URL.Path)
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ts.valid(tok, "repository:"+repo+":pull") {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="registry",scope="repository:%s:pull"`, realm, repo))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		serveContent(w, r, cdn)
	}
}

// serveContent answers a manifest itself and redirects a blob to cdn.
func serveContent(w http.ResponseWriter, r *http.Request, cdn string) {
	if strings.Contains(r.URL.Path, "/blobs/") {
		http.Redirect(w, r, cdn+"/blob?sig=1", http.StatusTemporaryRedirect)
		return
	}
	io.WriteString(w, "manifest")
}

func serveBlob(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "blob") }
