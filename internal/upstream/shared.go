package upstream

import "time"

// Share makes the client publish what it learns of its upstream's budget
// and 429 blocks to s, and act on what the other replicas publish there:
// the latest budget announced, and the latest block. Call it before the
// client's first request.
func (c *Client) Share(s Shared) {
	c.shared = s
	c.health.shared = func() time.Time {
		st, _ := s.State(c.name)
		return st.BlockedUntil
	}
}

// publish shares the client's own budget and block.
func (c *Client) publish() {
	if c.shared == nil {
		return
	}
	c.budget.mu.Lock()
	b := c.budget.last
	c.budget.mu.Unlock()
	c.shared.Publish(c.name, State{Budget: b, BlockedUntil: c.health.ownBlock()})
}

// sharedBudget returns the budget another replica announced after last,
// or last.
func (c *Client) sharedBudget(last Budget) Budget {
	if c.shared == nil {
		return last
	}
	if st, ok := c.shared.State(c.name); ok && st.Budget.Seen.After(last.Seen) {
		st.Budget.Floor = c.budget.floor.Of(st.Budget.Limit)
		return st.Budget
	}
	return last
}

// Shared is what the replicas of a cluster know together of their
// upstreams (package cluster implements it over Redis), so that they spend
// one rate-limit budget and honour one 429 block: what one replica learns
// from an answer, the others act on. A client without one knows only its
// own answers.
//
// Both methods answer from memory, never waiting on the network: Publish
// sends in the background, and State returns the last state received.
type Shared interface {
	// Publish makes s known as upstream's state to the other replicas.
	Publish(upstream string, s State)
	// State returns upstream's state as the other replicas last
	// published it, and false when none has.
	State(upstream string) (State, bool)
}

// State is an upstream's state as replicas share it.
type State struct {
	// Budget is the rate-limit budget as last announced (Budget.Seen
	// orders announcements; Floor and Saving are each replica's own).
	Budget Budget `json:"budget"`
	// BlockedUntil is when a 429's block ends; the zero time: none.
	BlockedUntil time.Time `json:"blockedUntil"`
}
