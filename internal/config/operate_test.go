package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestParseOperations covers the keys and flags of logging, metrics,
// shutdown and rate-limit floors.
func TestParseOperations(t *testing.T) {
	const file = `log:
  format: json
  level: warn
metrics: false
shutdown_grace: 5s
upstreams:
  - name: docker.io
    url: https://registry-1.docker.io
    ratelimit_floor: 25%
  - name: local
    url: http://127.0.0.1:5000
    ratelimit_floor: 20
  - name: other
    url: http://127.0.0.1:5002
    ratelimit_floor: 0
`
	tests := []struct {
		name string
		setup
		want func(cfg *Config)
	}{
		{name: "file", setup: setup{file: file}, want: func(cfg *Config) {
			cfg.Log = Log{Format: "json", Level: slog.LevelWarn}
			cfg.Metrics = false
			cfg.ShutdownGrace = 5 * time.Second
			cfg.Upstreams = []Upstream{upstream(t, "docker.io", "https://registry-1.docker.io"), upstream(t, "local", "http://127.0.0.1:5000"), upstream(t, "other", "http://127.0.0.1:5002")}
			cfg.Upstreams[0].RateLimitFloor = Floor{Fraction: 0.25}
			cfg.Upstreams[1].RateLimitFloor = Floor{Count: 20}
			cfg.Upstreams[2].RateLimitFloor = Floor{}
			cfg.Default = "docker.io"
		}},
		{name: "the variable over the file, the flags over both", setup: setup{file: "log: {level: warn}\n", env: map[string]string{"ENTREPOT_LOG_LEVEL": "error"}}, want: func(cfg *Config) {
			cfg.Log.Level = slog.LevelError
		}},
		{name: "flags", setup: setup{file: "log: {level: warn}\n", env: map[string]string{"ENTREPOT_LOG_LEVEL": "error"}, args: []string{"--log-level", "debug", "--log-format", "json"}}, want: func(cfg *Config) {
			cfg.Log = Log{Format: "json", Level: slog.LevelDebug}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := tt.parse(t)
			if err != nil {
				t.Fatal(err)
			}
			want := Defaults()
			tt.want(want)
			if got.Log != want.Log || got.Metrics != want.Metrics || got.ShutdownGrace != want.ShutdownGrace {
				t.Errorf("got log %+v metrics %v grace %v, want %+v %v %v", got.Log, got.Metrics, got.ShutdownGrace, want.Log, want.Metrics, want.ShutdownGrace)
			}
			for i := range want.Upstreams {
				if got.Upstreams[i].RateLimitFloor != want.Upstreams[i].RateLimitFloor {
					t.Errorf("upstreams[%d].ratelimit_floor = %v, want %v", i, got.Upstreams[i].RateLimitFloor, want.Upstreams[i].RateLimitFloor)
				}
			}
		})
	}
}

func TestParseOperationErrors(t *testing.T) {
	tests := []struct {
		name string
		setup
		want string
	}{
		{"unknown level in the file", setup{file: "log: {level: loud}\n"}, `log.level: "loud" is not a log level: want debug, info, warn or error`},
		{"unknown level in the variable", setup{env: map[string]string{"ENTREPOT_LOG_LEVEL": "verbose"}}, `ENTREPOT_LOG_LEVEL: "verbose" is not a log level`},
		{"unknown level flag", setup{args: []string{"--log-level", "trace"}}, `--log-level: "trace" is not a log level`},
		{"unknown format", setup{file: "log: {format: xml}\n"}, `log.format: "xml" is not a log format: want text or json`},
		{"unknown format flag", setup{args: []string{"--log-format", "logfmt"}}, `--log-format: "logfmt" is not a log format`},
		{"metrics not a bool", setup{file: "metrics: sometimes\n"}, "cannot unmarshal !!str `sometimes` into bool"},
		{"grace zero", setup{file: "shutdown_grace: 0s\n"}, `shutdown_grace: "0s" must be positive`},
		{"floor of 100%", setup{file: "upstreams:\n  - {name: x, url: http://x, ratelimit_floor: 100%}\n"}, `upstreams[0].ratelimit_floor: "100%" must be a percentage below 100% or a number of requests`},
		{"negative floor", setup{file: "upstreams:\n  - {name: x, url: http://x, ratelimit_floor: -3}\n"}, `upstreams[0].ratelimit_floor: "-3" must be`},
		{"floor garbage", setup{file: "upstreams:\n  - {name: x, url: http://x, ratelimit_floor: few}\n"}, `upstreams[0].ratelimit_floor: "few" must be`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.parse(t)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestParsePositionalConfig: `entrepot serve FILE` reads FILE, with flags
// before or after it.
func TestParsePositionalConfig(t *testing.T) {
	for _, args := range [][]string{{"$DIR/e.yaml"}, {"--listen", ":6000", "$DIR/e.yaml"}, {"$DIR/e.yaml", "--listen", ":6000"}} {
		s := setup{args: args, files: map[string]string{"e.yaml": "data: /srv/x\nlisten: \":7000\"\n"}}
		cfg, _, err := s.parse(t)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		wantListen := ":7000"
		if len(args) > 1 {
			wantListen = ":6000"
		}
		if cfg.Data != "/srv/x" || cfg.Listen != wantListen {
			t.Errorf("%q: data %q listen %q, want /srv/x %s", args, cfg.Data, cfg.Listen, wantListen)
		}
	}
}

// TestUpstreamFlagSkipsReplacedCredentials: --upstream replaces the file's
// upstreams, so their unset password variables are no error; anything else
// wrong with them still is.
func TestUpstreamFlagSkipsReplacedCredentials(t *testing.T) {
	file := "upstreams:\n  - {name: hub, url: https://registry-1.docker.io, username: alice, password_env: HUB_TOKEN}\n"
	if _, _, err := (setup{file: file}).parse(t); err == nil || !strings.Contains(err.Error(), "HUB_TOKEN is not set") {
		t.Fatalf("without --upstream: error %v, want HUB_TOKEN is not set", err)
	}
	cfg, _, err := (setup{file: file, args: []string{"--upstream", "local=http://127.0.0.1:5000"}}).parse(t)
	if err != nil {
		t.Fatalf("with --upstream: %v", err)
	}
	if len(cfg.Upstreams) != 1 || cfg.Upstreams[0].Name != "local" {
		t.Errorf("upstreams %+v, want only local", cfg.Upstreams)
	}
	bad := "upstreams:\n  - {name: hub, url: ftp://x}\n"
	if _, _, err := (setup{file: bad, args: []string{"--upstream", "local=http://127.0.0.1:5000"}}).parse(t); err == nil {
		t.Error("a broken upstream replaced by --upstream: no error, want one")
	}
}
