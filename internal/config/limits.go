package config

import "fmt"

// Limits are the clients' fair use (the limits section).
type Limits struct {
	// ClientRPS is the requests a second each client may send, by its
	// authenticated name or else its address (limits.client_rps); 0, the
	// default, is no limit. ClientBurst is how many it may send at once
	// (limits.client_burst); default 2×ClientRPS, at least 20: a pull
	// sends a manifest request and one per layer in a burst.
	ClientRPS   float64
	ClientBurst int
}

// fileLimits is the limits section.
type fileLimits struct {
	ClientRPS   *float64 `yaml:"client_rps"`
	ClientBurst *int     `yaml:"client_burst"`
}

func (fl *fileLimits) apply(l *Limits) error {
	if fl.ClientRPS != nil {
		if *fl.ClientRPS < 0 {
			return fmt.Errorf("limits.client_rps: %g is negative", *fl.ClientRPS)
		}
		l.ClientRPS = *fl.ClientRPS
		l.ClientBurst = max(20, int(2**fl.ClientRPS))
	}
	if fl.ClientBurst != nil {
		if *fl.ClientBurst < 1 {
			return fmt.Errorf("limits.client_burst: must be 1 at least")
		}
		if fl.ClientRPS == nil {
			return fmt.Errorf("limits.client_burst: set without limits.client_rps")
		}
		l.ClientBurst = *fl.ClientBurst
	}
	return nil
}
