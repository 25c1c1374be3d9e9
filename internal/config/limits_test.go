package config

import (
	"strings"
	"testing"
)

func TestParseLimits(t *testing.T) {
	const ups = "upstreams:\n  - name: docker.io\n    url: https://registry-1.docker.io\n    max_fills: 8\n"
	cfg, _, err := setup{file: ups + "limits:\n  client_rps: 5\n"}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits != (Limits{ClientRPS: 5, ClientBurst: 20}) || cfg.Upstreams[0].MaxFills != 8 {
		t.Fatalf("limits %+v, max_fills %d", cfg.Limits, cfg.Upstreams[0].MaxFills)
	}
	if cfg, _, err := (setup{file: ups + "limits:\n  client_rps: 50\n  client_burst: 7\n"}).parse(t); err != nil || cfg.Limits.ClientBurst != 7 {
		t.Fatalf("client_burst: %+v %v", cfg, err)
	}
	if d := Defaults(); d.Limits.ClientRPS != 0 || d.Upstreams[0].MaxFills != 0 {
		t.Fatalf("defaults: %+v", d.Limits)
	}
	for _, tc := range []struct{ file, want string }{
		{"limits:\n  client_rps: -1\n", "limits.client_rps"},
		{"limits:\n  client_burst: 3\n", "limits.client_burst: set without limits.client_rps"},
		{"limits:\n  client_rps: 1\n  client_burst: 0\n", "limits.client_burst"},
		{"upstreams:\n  - name: x\n    url: http://127.0.0.1:5000\n    max_fills: -2\n", "upstreams[0].max_fills"},
	} {
		_, _, err := setup{file: tc.file}.parse(t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.file, err, tc.want)
		}
	}
}
