// Package throttle is fair use of the cache by its clients: a token
// bucket per client (its authenticated name, or its address), so that one
// runaway CI job cannot take the whole of a shared upstream's budget or
// starve the others. Over its rate a client gets 429 TOOMANYREQUESTS with
// the Retry-After of its next token.
package throttle

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/oci"
)

// maxClients bounds the buckets kept: the least recently seen client's is
// dropped past it, and starts full again if it comes back.
const maxClients = 10000

// Clients rate-limits each client.
type Clients struct {
	rps     rate.Limit
	burst   int
	buckets *lru.Cache[string, *rate.Limiter]
	now     func() time.Time
}

// New returns the limits of rps requests a second per client, with bursts
// of burst (at least 1).
func New(rps float64, burst int) *Clients {
	buckets, _ := lru.New[string, *rate.Limiter](maxClients)
	return &Clients{rps: rate.Limit(rps), burst: max(burst, 1), buckets: buckets, now: time.Now}
}

// key names the client of r: the name it authenticated with, else its
// address without the port.
func key(r *http.Request) string {
	if name := httpx.InfoOf(r.Context()).Client; name != "" {
		return "user:" + name
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// Middleware answers 429 to a client over its rate. It goes inside the
// access gate, so that the client's name is known.
func (c *Clients) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := key(r)
		lim, ok := c.buckets.Get(k)
		if !ok {
			lim = rate.NewLimiter(c.rps, c.burst)
			if prev, found, _ := c.buckets.PeekOrAdd(k, lim); found {
				lim = prev // another request of the client's added it first
			}
		}
		now := c.now()
		res := lim.ReserveN(now, 1)
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
			httpx.Errorf(http.StatusTooManyRequests, oci.CodeTooManyRequests,
				"over the limit of %g requests a second per client (limits.client_rps); retry in %s", float64(c.rps), d.Round(time.Millisecond)).Write(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
