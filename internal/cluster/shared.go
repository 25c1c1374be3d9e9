package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/redis/go-redis/v9"
)

// stateTTL is how long an upstream's state stays in Redis after it was
// last published: long past any rate-limit window or 429, so that it only
// keeps upstreams no replica talks to any more from piling up.
const stateTTL = time.Hour

// stateMessage is what goes on stateChannel.
type stateMessage struct {
	Upstream string         `json:"upstream"`
	State    upstream.State `json:"state"`
}

// Publish makes s known as upstream name's state to the other replicas. It
// never waits: the latest state per upstream waits in the outbox for the
// sending loop, which writes it to Redis (for replicas that join later)
// and publishes it (for those here now). While Redis is unreachable, the
// outbox keeps the latest state of each upstream until it returns.
func (c *Cluster) Publish(name string, s upstream.State) {
	c.stateMu.Lock()
	c.outbox[name] = s
	c.stateMu.Unlock()
	notify(c.sendWake)
}

// State returns upstream name's state as the replicas last published it, from
// memory, and false when none has or while Redis is unreachable (alone,
// the replica knows only its own answers).
func (c *Cluster) State(name string) (upstream.State, bool) {
	if !c.up.Load() {
		return upstream.State{}, false
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	s, ok := c.states[name]
	return s, ok
}

// merge returns what is known of an upstream once s arrives: the budget
// last announced, and the block that ends last. Announcements may arrive
// out of order (a poll after a message), and never make it older.
func merge(known, s upstream.State) upstream.State {
	if s.Budget.Seen.After(known.Budget.Seen) {
		known.Budget = s.Budget
	}
	if s.BlockedUntil.After(known.BlockedUntil) {
		known.BlockedUntil = s.BlockedUntil
	}
	return known
}

// receive merges a state received into memory.
func (c *Cluster) receive(name string, s upstream.State) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.states[name] = merge(c.states[name], s)
}

// sendStates sends the outbox whenever Publish fills it, in one pipeline.
// Two replicas may overwrite each other's value in Redis; receivers merge,
// so a late writer never makes their state older.
func (c *Cluster) sendStates() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.sendWake:
		}
		if !c.up.Load() {
			continue // kept; noteBeat nudges us when Redis returns
		}
		c.stateMu.Lock()
		out := c.outbox
		c.outbox = map[string]upstream.State{}
		c.stateMu.Unlock()
		if err := c.send(out); err != nil {
			c.requeue(out)
		}
	}
}

func (c *Cluster) send(out map[string]upstream.State) error {
	ctx, cancel := c.callCtx(c.ctx)
	defer cancel()
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for name, s := range out {
			state, _ := json.Marshal(s)
			msg, _ := json.Marshal(stateMessage{Upstream: name, State: s})
			p.Set(ctx, stateKey(name), state, stateTTL)
			p.Publish(ctx, stateChannel, msg)
		}
		return nil
	})
	return err
}

// requeue puts back in the outbox the states that failed to go and that
// no newer Publish replaced meanwhile; the next nudge sends them.
func (c *Cluster) requeue(out map[string]upstream.State) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	for name, s := range out {
		if _, newer := c.outbox[name]; !newer {
			c.outbox[name] = s
		}
	}
}

// followStates keeps the states in memory up to date: subscribed to
// stateChannel while Redis is reachable, and reading all the states again
// on every (re)subscription and every poll, which catches what was
// published while the subscription was down.
func (c *Cluster) followStates() {
	for {
		if c.up.Load() {
			c.subscribe()
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.statesWake:
		case <-time.After(c.t.beat): // after a failure, not at once
		}
	}
}

// subscribe follows stateChannel until the subscription fails or Redis
// becomes unreachable.
func (c *Cluster) subscribe() {
	ps := c.rdb.Subscribe(c.ctx, stateChannel)
	defer ps.Close()
	stop := context.AfterFunc(c.ctx, func() { ps.Close() }) // unblocks a receive at Close
	defer stop()
	// The confirmation of the subscription: from here on, nothing
	// published is missed, so the poll that follows leaves no gap.
	if _, err := ps.ReceiveTimeout(c.ctx, c.t.call); err != nil {
		return
	}
	next := time.Now()
	for c.up.Load() {
		if !time.Now().Before(next) {
			if c.poll() != nil {
				return
			}
			next = time.Now().Add(c.t.poll)
		}
		msg, err := ps.ReceiveTimeout(c.ctx, max(time.Until(next), time.Millisecond)) // 0 would be no timeout
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			continue
		}
		if err != nil {
			return
		}
		if m, ok := msg.(*redis.Message); ok {
			var sm stateMessage
			if json.Unmarshal([]byte(m.Payload), &sm) == nil && sm.Upstream != "" {
				c.receive(sm.Upstream, sm.State)
			}
		}
	}
}

// poll reads every upstream's state from Redis into memory.
func (c *Cluster) poll() error {
	ctx, cancel := c.callCtx(c.ctx)
	defer cancel()
	var keys []string
	iter := c.rdb.Scan(ctx, 0, stateKey("*"), 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil || len(keys) == 0 {
		return err
	}
	values, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return err
	}
	for i, v := range values {
		var s upstream.State
		if str, ok := v.(string); ok && json.Unmarshal([]byte(str), &s) == nil {
			c.receive(keys[i][len(stateKey("")):], s)
		}
	}
	return nil
}
