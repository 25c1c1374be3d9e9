// Package cluster makes several replicas of Entrepot on one store act as
// one cache, coordinated through Redis: it implements cache.Cluster (locks,
// a leader for the lifecycle work, the ownership of blob fills, and reading
// a fill from the replica that owns it) and upstream.Shared (one rate-limit
// budget and one 429 block per upstream for all replicas).
//
// Redis is a helper, never a dependency of a pull: every call to it is
// bounded by a short timeout, and while a heartbeat finds it unreachable,
// every method answers at once as if this replica were alone (locks are
// taken, it leads, its fills are its own). When Redis returns, the replica
// registers again and competes for leadership and claims as before.
//
// The files read in the order of a pull: cluster.go (configuration, the
// heartbeat that decides whether we are alone), lock.go (locks and
// leadership), fill.go (claims on fills, and reading another replica's
// fill), peer.go (serving our fills to the others), shared.go (upstream
// state).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var (
	_ cache.Cluster   = (*Cluster)(nil)
	_ upstream.Shared = (*Cluster)(nil)
)

// Config is how a replica joins its cluster.
type Config struct {
	// Redis is the URL of the Redis server, "redis://host:6379/0", or
	// "rediss://..." for TLS. A password in it is allowed; it is never
	// logged nor put in an error. Timeouts and retries in its query are
	// overridden: every call is bounded to 500 ms and never retried.
	Redis string
	// Advertise is the address the other replicas reach this one at:
	// "10.0.0.5:5000" (plain http) or a URL, "https://cache-1.internal:5000".
	Advertise string
	// Secret authenticates the requests of replicas to each other
	// (cluster.secret_env). Required.
	Secret string
	// Name is this replica's id in logs and in the replica count; ""
	// means Advertise.
	Name string
}

// timing is how often the cluster talks to Redis, and how long what it
// writes there lives. Tests use shorter ones (export_test.go).
type timing struct {
	call       time.Duration // bounds every Redis call
	beat       time.Duration // heartbeat: ping and register this replica
	replicaTTL time.Duration // a replica not heard of for this long is gone
	leaseTTL   time.Duration // leadership lapses after this without renewal
	leaseRenew time.Duration
	claimTTL   time.Duration // a fill's claim lapses after this without renewal
	claimRenew time.Duration
	poll       time.Duration // re-read of upstream states, beside pub/sub
}

var defaultTiming = timing{
	call:       500 * time.Millisecond,
	beat:       time.Second,
	replicaTTL: 6 * time.Second,
	leaseTTL:   6 * time.Second,
	leaseRenew: 2 * time.Second,
	claimTTL:   5 * time.Second,
	claimRenew: 1500 * time.Millisecond,
	poll:       5 * time.Second,
}

// Keys and channel in Redis, all under one prefix so that the cluster can
// share a Redis database with others.
const (
	prefix       = "entrepot:"
	leaderKey    = prefix + "leader"
	stateChannel = prefix + "upstreams"
)

func lockKey(name string) string      { return prefix + "lock:" + name }
func fillKey(d digest.Digest) string  { return prefix + "fill:" + d.String() }
func replicaKey(name string) string   { return prefix + "replica:" + name }
func stateKey(upstream string) string { return prefix + "upstream:" + upstream }

// wake returns a channel that nudges a loop: notify never blocks, and
// nudges sent while the loop is busy count as one.
func wake() chan struct{} { return make(chan struct{}, 1) }

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Cluster is this replica's membership of the cluster.
type Cluster struct {
	rdb    *redis.Client
	log    *slog.Logger
	t      timing
	name   string
	self   string // our base URL, as peers reach us; the value of our claims
	secret string
	peers  *peerClient

	ctx       context.Context // the loops' lifetime; cancelled by Close
	cancel    context.CancelFunc
	loops     sync.WaitGroup
	closeOnce sync.Once

	// up is whether Redis answered the last heartbeat; while it is
	// false, every method answers as if alone.
	up atomic.Bool
	mu sync.Mutex // protects downSince, downErr and replicas
	// downSince and downErr say since when and why Redis is unreachable.
	downSince time.Time
	downErr   error
	replicas  int // replicas registered, at the last heartbeat

	// Wakes for the loops, nudged when Redis returns so that they act
	// at once rather than at their next tick.
	leaderWake, claimsWake, statesWake, sendWake chan struct{}

	leaderToken string      // our value of leaderKey
	leading     atomic.Bool // we hold the leader's lease
	leaseAt     time.Time   // when it was last renewed; only the leader loop uses it

	claimMu sync.Mutex            // protects claims
	claims  map[digest.Digest]int // fills of this replica that hold the claim, by blob
	renewMu sync.RWMutex          // a renewal round (write) excludes releases (read): see renewClaims

	stateMu sync.Mutex                // protects states and outbox
	states  map[string]upstream.State // as received from all replicas
	outbox  map[string]upstream.State // published here and not sent yet: the latest per upstream
}

// New joins the cluster that cfg names. It does not fail when Redis is
// unreachable: the replica then starts alone, and keeps trying.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Cluster, error) {
	return newCluster(ctx, cfg, log, defaultTiming)
}

func newCluster(ctx context.Context, cfg Config, log *slog.Logger, t timing) (*Cluster, error) {
	opt, self, err := check(cfg)
	if err != nil {
		return nil, err
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = t.call, t.call, t.call
	opt.ContextTimeoutEnabled = true
	// No retries: a retried SET NX whose first reply was lost would say
	// "taken" of a lock we took. The next round retries instead.
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := cfg.Name
	if name == "" {
		name = cfg.Advertise
	}
	c := &Cluster{
		rdb:         redis.NewClient(opt),
		log:         log.With("replica", name),
		t:           t,
		name:        name,
		self:        self,
		secret:      cfg.Secret,
		peers:       newPeerClient(cfg.Secret),
		leaderWake:  wake(),
		claimsWake:  wake(),
		statesWake:  wake(),
		sendWake:    wake(),
		leaderToken: newToken(),
		claims:      map[digest.Digest]int{},
		states:      map[string]upstream.State{},
		outbox:      map[string]upstream.State{},
	}
	redis.SetLogger(redisLog{c.log})
	c.ctx, c.cancel = context.WithCancel(ctx)
	// One round before returning, so that a replica that starts with
	// Redis up is a member at once, and the first of them leads.
	c.beat()
	c.contend()
	for _, loop := range []func(){c.heartbeat, c.lead, c.renewClaims, c.sendStates, c.followStates} {
		c.loops.Go(loop)
	}
	return c, nil
}

// redisLog carries go-redis's own lines (one per failed dial, among
// others) to our logger at Debug: an outage is logged once, by noteBeat.
// go-redis has one logger for the whole process, which New sets: the
// replicas of a process (tests) share the last one's.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// check validates cfg and returns the Redis options and our base URL. Its
// errors name the configuration key, and never echo the Redis URL.
func check(cfg Config) (*redis.Options, string, error) {
	if cfg.Redis == "" {
		return nil, "", errors.New("cluster.redis: required")
	}
	if cfg.Secret == "" {
		return nil, "", errors.New("cluster.secret_env: the shared secret is required")
	}
	if cfg.Advertise == "" {
		return nil, "", errors.New("cluster.advertise: required")
	}
	self, err := baseURL(cfg.Advertise)
	if err != nil {
		return nil, "", fmt.Errorf("cluster.advertise: %w", err)
	}
	opt, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		// A *url.Error quotes the whole URL, password included.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, "", fmt.Errorf("cluster.redis: invalid URL: %v", err)
	}
	return opt, self, nil
}

// baseURL turns an advertised address into the base URL of a replica:
// http:// unless it names its scheme, without a trailing slash.
func baseURL(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("%q is not host:port or an http(s) URL", addr)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Close leaves the cluster: it stops the loops, then releases the
// leadership and the claims this replica holds and unregisters it, so that
// the others take over at once rather than when they lapse.
func (c *Cluster) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.cancel()
		c.loops.Wait()
		c.leading.Store(false)
		if c.up.Load() {
			c.releaseAll()
		}
		c.peers.CloseIdleConnections()
		err = c.rdb.Close()
	})
	return err
}

// Ready reports on the cluster for /readyz. It is always ok: a replica
// without Redis serves alone.
func (c *Cluster) Ready() (ok bool, detail string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up.Load() {
		return true, fmt.Sprintf("cluster: alone, redis unreachable since %s: %v", c.downSince.Format(time.TimeOnly), c.downErr)
	}
	detail = fmt.Sprintf("cluster: %d %s", c.replicas, plural(c.replicas, "replica", "replicas"))
	if c.leading.Load() {
		detail += " (this one leads)"
	}
	return true, detail
}

// Status is what the cluster looks like from this replica, for metrics.
type Status struct {
	Up       bool // Redis answers: the replica is part of the cluster
	Replicas int  // replicas registered at the last heartbeat
	Leading  bool // this replica does the lifecycle work
}

// Status returns the cluster's state as this replica sees it.
func (c *Cluster) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Up: c.up.Load(), Replicas: c.replicas, Leading: c.leading.Load()}
}

// callCtx bounds one Redis call, so that a Redis that does not answer
// never stalls a pull.
func (c *Cluster) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.t.call)
}

// heartbeat registers this replica every beat, which is also how the
// cluster learns whether Redis is reachable.
func (c *Cluster) heartbeat() {
	tick := time.NewTicker(c.t.beat)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
			c.beat()
		}
	}
}

// beat registers this replica for replicaTTL and counts the replicas.
func (c *Cluster) beat() {
	ctx, cancel := c.callCtx(c.ctx)
	defer cancel()
	err := c.rdb.Set(ctx, replicaKey(c.name), c.self, c.t.replicaTTL).Err()
	n := 0
	if err == nil {
		n, err = c.countReplicas(ctx)
	}
	if c.ctx.Err() == nil { // a beat cut by Close says nothing of Redis
		c.noteBeat(err, n)
	}
}

// countReplicas counts the replicas registered. SCAN walks the whole
// database, which holds little beside our own keys.
func (c *Cluster) countReplicas(ctx context.Context) (int, error) {
	n := 0
	iter := c.rdb.Scan(ctx, 0, replicaKey("*"), 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	return n, iter.Err()
}

// noteBeat records what a beat found, and logs only the changes: one Warn
// when Redis goes away, one Info when it returns, never a line per call.
func (c *Cluster) noteBeat(err error, replicas int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.replicas = replicas
		if !c.up.Swap(true) {
			c.log.Info("redis reachable; joining the cluster", "redis", c.rdb.Options().Addr, "replicas", replicas)
			for _, ch := range []chan struct{}{c.leaderWake, c.claimsWake, c.statesWake, c.sendWake} {
				notify(ch)
			}
		}
		return
	}
	c.downErr = err
	if c.up.Swap(false) || c.downSince.IsZero() {
		c.downSince = time.Now()
		c.log.Warn("redis unreachable; acting alone until it returns", "redis", c.rdb.Options().Addr, "err", err)
	}
}
