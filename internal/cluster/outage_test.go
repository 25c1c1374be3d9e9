package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/testenv"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
)

// While Redis is away every replica acts alone, at once and quietly; when
// it returns they rejoin: one leader again, locks exclusive again, and the
// claims taken meanwhile written to it. The Redis wants a password, which
// nothing may show.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	const password = "r3dis-pw"
	port := testenv.FreePort(t)
	redisServer := testenv.StartRedis(t, port, "--requirepass", password)
	url := "redis://:" + password + "@" + testenv.Addr(port) + "/0"
	a, b := newReplica(t, url), newReplica(t, url)
	ctx := context.Background()

	eventually(t, "one leader", func() bool { return len(leaders(a, b)) == 1 })
	if _, ok := a.Lock(ctx, "evict", time.Minute); !ok {
		t.Fatal("a: Lock")
	}
	if _, ok := b.Lock(ctx, "evict", time.Minute); ok {
		t.Fatal("b took a's lock")
	}
	a.Publish("docker.io", upstream.State{BlockedUntil: time.Now().Add(time.Hour)})
	eventually(t, "b receives a's state", func() bool { _, ok := b.State("docker.io"); return ok })

	redisServer.Kill()
	eventually(t, "both alone", func() bool { return alone(a) && alone(b) })
	held := digest.FromString("claimed while alone")
	for _, r := range []*replica{a, b} {
		if _, ok := r.Lock(ctx, "evict", time.Minute); !ok {
			t.Error("alone, Lock not taken")
		}
		if !r.Leader() {
			t.Error("alone, not leading")
		}
		owner, release, err := r.ClaimFill(ctx, digest.FromString("layer"))
		if err != nil || owner != "" || release == nil {
			t.Errorf("alone, ClaimFill: owner %q, release %v, %v", owner, release != nil, err)
		} else {
			release()
		}
		if _, ok := r.State("docker.io"); ok {
			t.Error("alone, State answered from the cluster")
		}
	}
	// a keeps this claim through the outage.
	if owner, _, err := a.ClaimFill(ctx, held); err != nil || owner != "" {
		t.Fatalf("alone, ClaimFill: owner %q, %v", owner, err)
	}

	testenv.StartRedis(t, port, "--requirepass", password)
	eventually(t, "both rejoin", func() bool { return !alone(a) && !alone(b) })
	eventually(t, "one leader again", func() bool { return len(leaders(a, b)) == 1 })
	// Read in Redis itself: b's ClaimFill could take the claim first.
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	eventually(t, "a's claim written to the new Redis", func() bool {
		return rdb.Get(ctx, "entrepot:fill:"+held.String()).Val() == a.URL
	})
	if owner, _, _ := b.ClaimFill(ctx, held); owner != a.URL {
		t.Errorf("b's claim after the outage: owner %q; want %q", owner, a.URL)
	}
	var unlock func()
	eventually(t, "a takes a lock again", func() bool {
		var ok bool
		unlock, ok = a.Lock(ctx, "warm", time.Minute)
		return ok
	})
	if _, ok := b.Lock(ctx, "warm", time.Minute); ok {
		t.Error("locks not exclusive after the outage")
	}
	unlock()

	for name, r := range map[string]*replica{"a": a, "b": b} {
		logs := r.logs.String()
		if n := r.logs.count("redis unreachable; acting alone until it returns"); n != 1 {
			t.Errorf("%s warned %d times of the outage:\n%s", name, n, logs)
		}
		if n := r.logs.count("redis reachable; joining the cluster"); n != 2 { // at start, and after
			t.Errorf("%s logged joining %d times:\n%s", name, n, logs)
		}
		if strings.Contains(logs, password) || strings.Contains(logs, secret) {
			t.Errorf("%s logged a secret:\n%s", name, logs)
		}
	}
}

// A replica that starts while Redis is down serves alone, and joins once
// Redis comes.
func TestStartsAloneAndJoinsLater(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	a := newReplica(t, "redis://"+testenv.Addr(port)+"/0")
	if !alone(a) || !a.Leader() {
		t.Fatalf("with no Redis: alone %v, leader %v", alone(a), a.Leader())
	}
	if _, ok := a.Lock(context.Background(), "x", time.Minute); !ok {
		t.Fatal("alone, Lock not taken")
	}
	testenv.StartRedis(t, port)
	eventually(t, "a joins", func() bool { return !alone(a) })
	eventually(t, "a leads through the lease", func() bool {
		_, detail := a.Ready()
		return detail == "cluster: 1 replica (this one leads)"
	})
}
