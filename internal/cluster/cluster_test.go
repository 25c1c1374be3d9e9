package cluster_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cluster"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
)

func TestLockIsExclusiveLapsesAndUnlocksOnlyItsOwn(t *testing.T) {
	t.Parallel()
	url := newRedis(t)
	a, b := newReplica(t, url), newReplica(t, url)
	ctx := context.Background()

	unlockA, ok := a.Lock(ctx, "evict", time.Minute)
	if !ok {
		t.Fatal("a: first Lock not taken")
	}
	unlockB, ok := b.Lock(ctx, "evict", time.Minute)
	if ok {
		t.Fatal("b took the lock a holds")
	}
	unlockB() // a lock not taken has a no-op unlock
	if _, ok := b.Lock(ctx, "evict", time.Minute); ok {
		t.Fatal("b's no-op unlock released a's lock")
	}
	if _, ok := b.Lock(ctx, "warm", time.Minute); !ok {
		t.Fatal("b could not take another lock")
	}
	unlockA()
	unlockB, ok = b.Lock(ctx, "evict", time.Minute)
	if !ok {
		t.Fatal("b could not take the lock a released")
	}
	unlockB()

	// A lock lapses after its ttl; the unlock of its first holder, late,
	// leaves the next holder's lock alone.
	lateUnlock, ok := a.Lock(ctx, "sweep", 200*time.Millisecond)
	if !ok {
		t.Fatal("a: Lock sweep not taken")
	}
	var unlockSweep func()
	eventually(t, "b takes the lock after a's lapses", func() bool {
		unlockSweep, ok = b.Lock(ctx, "sweep", time.Minute)
		return ok
	})
	lateUnlock()
	if _, ok := a.Lock(ctx, "sweep", time.Minute); ok {
		t.Fatal("a's late unlock deleted b's lock")
	}
	unlockSweep()
	if _, ok := a.Lock(ctx, "sweep", time.Minute); !ok {
		t.Fatal("b's unlock did not release its lock")
	}
}

func TestOneLeaderAtATimeAndLeadershipMovesOnClose(t *testing.T) {
	t.Parallel()
	url := newRedis(t)
	rs := []*replica{newReplica(t, url), newReplica(t, url), newReplica(t, url)}

	// one polls until exactly one of rs leads, failing if ever two do.
	one := func(rs []*replica) *replica {
		var leader *replica
		eventually(t, "one leader", func() bool {
			ls := leaders(rs...)
			if len(ls) > 1 {
				t.Fatalf("%d leaders at once", len(ls))
			}
			if len(ls) == 1 {
				leader = ls[0]
			}
			return leader != nil
		})
		return leader
	}
	first := one(rs)
	eventually(t, "Ready counts 3 replicas", func() bool {
		_, detail := first.Ready()
		return detail == "cluster: 3 replicas (this one leads)"
	})
	var rest []*replica
	for _, r := range rs {
		if r != first {
			rest = append(rest, r)
		}
	}
	if first.Close() != nil {
		t.Fatal("Close failed")
	}
	if first.Leader() {
		t.Fatal("a closed replica still leads")
	}
	second := one(rest)
	if second == first {
		t.Fatal("leadership did not move")
	}
	eventually(t, "Ready counts 2 replicas once one left", func() bool {
		_, detail := rest[0].Ready()
		return strings.HasPrefix(detail, "cluster: 2 replicas")
	})
	if n := first.logs.count(`msg="leading the cluster"`); n != 1 {
		t.Errorf("the first leader logged leading %d times:\n%s", n, first.logs)
	}
}

func TestClaimFill(t *testing.T) {
	t.Parallel()
	url := newRedis(t)
	a, b, c := newReplica(t, url), newReplica(t, url), newReplica(t, url)
	ctx := context.Background()
	d := digest.FromString("layer")

	owner, release, err := a.ClaimFill(ctx, d)
	if err != nil || owner != "" {
		t.Fatalf("a's claim: owner %q, %v", owner, err)
	}
	// A second fill of the same blob on a (one that failed, and its
	// successor) holds the claim too; the claim goes with the last.
	owner, release2, err := a.ClaimFill(ctx, d)
	if err != nil || owner != "" {
		t.Fatalf("a's second claim: owner %q, %v", owner, err)
	}
	for _, r := range []*replica{b, c} {
		if owner, _, err := r.ClaimFill(ctx, d); err != nil || owner != a.URL {
			t.Fatalf("claim of another replica: owner %q, %v; want %q", owner, err, a.URL)
		}
	}
	release2()
	release2() // twice is once
	if owner, _, _ := b.ClaimFill(ctx, d); owner != a.URL {
		t.Fatalf("after one of a's two releases, owner %q; want %q", owner, a.URL)
	}
	release()
	owner, releaseB, err := b.ClaimFill(ctx, d)
	if err != nil || owner != "" {
		t.Fatalf("b's claim after a's release: owner %q, %v", owner, err)
	}
	if owner, _, _ := a.ClaimFill(ctx, d); owner != b.URL {
		t.Fatalf("a's claim after b took it: owner %q; want %q", owner, b.URL)
	}
	releaseB()
	if owner, _, _ := c.ClaimFill(ctx, d); owner != "" {
		t.Fatalf("c's claim after b's release: owner %q", owner)
	}
}

// A claim is renewed while its owner lives, and lapses once it is killed,
// so that another replica takes the fill over.
func TestClaimLapsesWhenItsOwnerDies(t *testing.T) {
	t.Parallel()
	url := newRedis(t)
	a, b := newReplica(t, url), newReplica(t, url)
	ctx := context.Background()
	d := digest.FromString("big layer")
	if owner, _, err := a.ClaimFill(ctx, d); err != nil || owner != "" {
		t.Fatalf("a's claim: owner %q, %v", owner, err)
	}

	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	key := "entrepot:fill:" + d.String()
	first := rdb.PTTL(ctx, key).Val()
	eventually(t, "the claim's expiry renewed", func() bool { return rdb.PTTL(ctx, key).Val() > first })

	if owner, _, _ := b.ClaimFill(ctx, d); owner != a.URL {
		t.Fatalf("owner %q; want %q", owner, a.URL)
	}
	cluster.Kill(a.Cluster)
	eventually(t, "b takes the claim of a killed replica", func() bool {
		owner, _, err := b.ClaimFill(ctx, d)
		return err == nil && owner == ""
	})
}

func TestSharedStateConverges(t *testing.T) {
	t.Parallel()
	url := newRedis(t)
	a, b := newReplica(t, url), newReplica(t, url)
	now := time.Now().UTC().Truncate(time.Millisecond)

	if _, ok := b.State("docker.io"); ok {
		t.Fatal("a state before any was published")
	}
	s1 := upstream.State{Budget: upstream.Budget{Limit: 100, Remaining: 40, Window: 6 * time.Hour, Seen: now}}
	a.Publish("docker.io", s1)
	eventually(t, "b receives a's state", func() bool {
		s, ok := b.State("docker.io")
		return ok && s.Budget.Remaining == 40 && s.Budget.Seen.Equal(now)
	})

	// An older budget does not replace a newer one; a later block does.
	block := now.Add(time.Minute)
	b.Publish("docker.io", upstream.State{Budget: upstream.Budget{Limit: 100, Remaining: 90, Seen: now.Add(-time.Hour)}, BlockedUntil: block})
	eventually(t, "a receives b's block", func() bool {
		s, _ := a.State("docker.io")
		return s.BlockedUntil.Equal(block)
	})
	if s, _ := a.State("docker.io"); s.Budget.Remaining != 40 {
		t.Errorf("an older budget replaced the newer: %+v", s.Budget)
	}
	if _, ok := a.State("ghcr.io"); ok {
		t.Error("a state for an upstream never published")
	}

	// A replica that joins later reads the states from Redis.
	c := newReplica(t, url)
	eventually(t, "a late replica reads the state", func() bool {
		s, ok := c.State("docker.io")
		return ok && s.BlockedUntil.Equal(block)
	})
}

func TestNewChecksItsConfig(t *testing.T) {
	t.Parallel()
	good := cluster.Config{Redis: "redis://127.0.0.1:1/0", Advertise: "10.0.0.5:5000", Secret: "x"}
	for _, tc := range []struct {
		name string
		edit func(*cluster.Config)
		want string
	}{
		{"no redis", func(c *cluster.Config) { c.Redis = "" }, "cluster.redis: required"},
		{"no secret", func(c *cluster.Config) { c.Secret = "" }, "cluster.secret_env"},
		{"no advertise", func(c *cluster.Config) { c.Advertise = "" }, "cluster.advertise: required"},
		{"bad advertise", func(c *cluster.Config) { c.Advertise = "ftp://x" }, "cluster.advertise"},
		{"bad scheme", func(c *cluster.Config) { c.Redis = "http://u:hunter2@h" }, "cluster.redis: invalid URL"},
		{"bad URL", func(c *cluster.Config) { c.Redis = "redis://u:hunter2@h:port/0" }, "cluster.redis: invalid URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			c, err := cluster.New(context.Background(), cfg, nil)
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q; want %q, and no password", err, tc.want)
			}
		})
	}
}

// Close ends every goroutine of the package. Not parallel: the other
// tests' replicas would be counted.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	url := newRedis(t)
	a, b := newReplica(t, url), newReplica(t, url)
	if _, ok := a.Lock(context.Background(), "x", time.Minute); !ok {
		t.Fatal("Lock")
	}
	a.Close()
	b.Close()
	// The goroutines end as Close returns; give the scheduler a moment to
	// retire them, then name any left.
	var left string
	for range 100 {
		left = ""
		buf := make([]byte, 1<<20)
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "internal/cluster.(*Cluster)") {
				left = g
			}
		}
		if left == "" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("a goroutine left after Close:\n%s", left)
}
