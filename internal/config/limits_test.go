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

func TestParseParallel(t *testing.T) {
	const up = "upstreams:\n  - name: x\n    url: http://127.0.0.1:5000\n"
	cfg, _, err := setup{file: up + "    max_connections: 32\n    parallel:\n      min_size: 64MiB\n      parts: 4\n      part_size: 16MiB\n      stream_rate: 0\n"}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Upstreams[0]; u.MaxConnections != 32 || u.Parallel != (Parallel{MinSize: 64 << 20, Parts: 4, PartSize: 16 << 20, StreamRate: 0}) {
		t.Fatalf("max_connections %d, parallel %+v", u.MaxConnections, u.Parallel)
	}
	// Each key alone keeps the others' defaults; min_size 0 turns it off.
	cfg, _, err = setup{file: up + "    parallel:\n      min_size: 0\n"}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Upstreams[0]; u.MaxConnections != 16 || u.Parallel != (Parallel{MinSize: 0, Parts: 8, PartSize: 8 << 20, StreamRate: 256 << 20}) {
		t.Fatalf("max_connections %d, parallel %+v", u.MaxConnections, u.Parallel)
	}
	for _, tc := range []struct{ file, want string }{
		{up + "    max_connections: 0\n", "upstreams[0].max_connections: 0 must be from 1 to 1024"},
		{up + "    parallel:\n      parts: 0\n", "upstreams[0].parallel.parts: 0 must be from 1 to 64"},
		{up + "    parallel:\n      part_size: 64KiB\n", "upstreams[0].parallel.part_size: 64 KiB is below the least part size, 1 MiB"},
		{up + "    parallel:\n      min_size: lots\n", "upstreams[0].parallel.min_size"},
		{up + "    parallel:\n      chunks: 3\n", "chunks"},
		{up + "    parallel:\n      stream_rate: fast\n", "upstreams[0].parallel.stream_rate"},
	} {
		_, _, err := setup{file: tc.file}.parse(t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.file, err, tc.want)
		}
	}
}
