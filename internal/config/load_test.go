package config

import (
	"errors"
	"flag"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// upstream is the expected value of an upstream with default settings.
func upstream(t *testing.T, name, rawURL string) Upstream {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return Upstream{
		Name:                  name,
		URL:                   u,
		TTL:                   60 * time.Second,
		ConnectTimeout:        5 * time.Second,
		ResponseHeaderTimeout: 8 * time.Second,
		IdleTimeout:           30 * time.Second,
		RateLimitFloor:        Floor{Fraction: 0.10},
		MaxConnections:        16,
		Parallel:              Parallel{MinSize: 32 << 20, Parts: 8, PartSize: 8 << 20, StreamRate: 256 << 20},
	}
}

func builtinUpstreams(t *testing.T) []Upstream {
	return []Upstream{
		upstream(t, "docker.io", "https://registry-1.docker.io"),
		upstream(t, "ghcr.io", "https://ghcr.io"),
		upstream(t, "quay.io", "https://quay.io"),
		upstream(t, "registry.k8s.io", "https://registry.k8s.io"),
		upstream(t, "gcr.io", "https://gcr.io"),
		upstream(t, "public.ecr.aws", "https://public.ecr.aws"),
		upstream(t, "mcr.microsoft.com", "https://mcr.microsoft.com"),
	}
}

// setup is the environment of one Parse call: the config file (passed as
// --config before args when not empty), other files, and the environment.
// "$DIR" in file and args is replaced by the test's directory.
type setup struct {
	args  []string
	file  string
	files map[string]string
	env   map[string]string
}

// parse runs Parse in a fresh directory and returns the config file's path.
func (s setup) parse(t *testing.T) (*Config, string, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range s.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var args []string
	path := filepath.Join(dir, "entrepot.yaml")
	if s.file != "" {
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(s.file, "$DIR", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	for _, a := range s.args {
		args = append(args, strings.ReplaceAll(a, "$DIR", dir))
	}
	cfg, err := Parse(args, func(k string) string { return s.env[k] })
	return cfg, path, err
}

func TestDefaults(t *testing.T) {
	want := &Config{
		Listen:    ":5000",
		Data:      "./data",
		Default:   "docker.io",
		Prefetch:  4,
		Upstreams: builtinUpstreams(t),
		Storage:   Storage{HighWatermark: 0.95, LowWatermark: 0.85},
		Admin:     Admin{Listen: "127.0.0.1:5001"},
		Log:       Log{Format: "text", Level: slog.LevelInfo},
		Metrics:   true,

		ShutdownGrace: 30 * time.Second,
		Auth:          Auth{TokenTTL: 5 * time.Minute},
		Redirect:      Redirect{Expiry: 10 * time.Minute},
	}
	got := Defaults()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Defaults() =\n%+v\nwant\n%+v", got, want)
	}

	// Each call is a fresh copy: changing one must not change the next.
	got.Upstreams[0].URL.Host = "changed"
	got.Upstreams[1].Name = "changed"
	if again := Defaults(); !reflect.DeepEqual(again, want) {
		t.Fatalf("Defaults() after modifying an earlier result =\n%+v", again)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		setup
		want func(t *testing.T) *Config
	}{
		{
			name: "no configuration",
			want: func(t *testing.T) *Config { return Defaults() },
		},
		{
			name:  "empty file",
			setup: setup{file: "# nothing here\n"},
			want:  func(t *testing.T) *Config { return Defaults() },
		},
		{
			name:  "file sets listen and data, keeps built-in upstreams",
			setup: setup{file: "listen: 127.0.0.1:6000\ndata: /var/lib/entrepot\n"},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Listen, cfg.Data = "127.0.0.1:6000", "/var/lib/entrepot"
				return cfg
			},
		},
		{
			name:  "file default picks a built-in upstream",
			setup: setup{file: "default: ghcr.io\n"},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Default = "ghcr.io"
				return cfg
			},
		},
		{
			name: "file with every key",
			setup: setup{
				file: `listen: "[::1]:5001"
data: /srv/cache
default: ghcr.io
upstreams:
  - name: docker.io
    url: https://registry-1.docker.io/
    ttl: 0
    username: alice
    password_env: HUB_TOKEN
    timeouts:
      connect: 1s
      response_header: 1m30s
      idle: 2m
  - name: ghcr.io
    url: https://ghcr.io
    ttl: 0s
    username: bob
    password_file: $DIR/ghcr-token
  - name: localhost:5000
    url: http://localhost:5000/mirror/
    ttl: 10m
`,
				files: map[string]string{"ghcr-token": "gh-s3cret\n"},
				env:   map[string]string{"HUB_TOKEN": "hub-s3cret"},
			},
			want: func(t *testing.T) *Config {
				hub := upstream(t, "docker.io", "https://registry-1.docker.io")
				hub.TTL = 0
				hub.Username, hub.Password = "alice", "hub-s3cret"
				hub.ConnectTimeout, hub.ResponseHeaderTimeout, hub.IdleTimeout = time.Second, 90*time.Second, 2*time.Minute
				gh := upstream(t, "ghcr.io", "https://ghcr.io")
				gh.TTL = 0
				gh.Username, gh.Password = "bob", "gh-s3cret"
				local := upstream(t, "localhost:5000", "http://localhost:5000/mirror")
				local.TTL = 10 * time.Minute
				cfg := Defaults()
				cfg.Listen, cfg.Data, cfg.Default, cfg.Upstreams = "[::1]:5001", "/srv/cache", "ghcr.io", []Upstream{hub, gh, local}
				return cfg
			},
		},
		{
			name:  "file upstreams replace the built-in ones, first is default",
			setup: setup{file: "upstreams:\n  - name: my-registry.example.com\n    url: https://my-registry.example.com\n  - name: local\n    url: http://10.0.0.1:5000\n"},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Default, cfg.Upstreams = "my-registry.example.com", []Upstream{
					upstream(t, "my-registry.example.com", "https://my-registry.example.com"),
					upstream(t, "local", "http://10.0.0.1:5000"),
				}
				return cfg
			},
		},
		{
			name: "flags override the file",
			setup: setup{
				file: "listen: :6000\ndata: /from/file\n",
				args: []string{"--listen", ":7000", "-data=/from/flag"},
			},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Listen, cfg.Data = ":7000", "/from/flag"
				return cfg
			},
		},
		{
			name:  "prefetch off in the file, set by a flag",
			setup: setup{file: "prefetch: 0\n"},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Prefetch = 0
				return cfg
			},
		},
		{
			name:  "--prefetch overrides the file",
			setup: setup{file: "prefetch: 0\n", args: []string{"--prefetch", "8"}},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Prefetch = 8
				return cfg
			},
		},
		{
			name:  "single-dash flags",
			setup: setup{args: []string{"-listen", "localhost:8080", "-data", "d"}},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Listen, cfg.Data = "localhost:8080", "d"
				return cfg
			},
		},
		{
			name:  "--upstream replaces the built-in list, first is default",
			setup: setup{args: []string{"--upstream", "quay.io=https://quay.io", "--upstream=local=http://127.0.0.1:5001/"}},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Default, cfg.Upstreams = "quay.io", []Upstream{
					upstream(t, "quay.io", "https://quay.io"),
					upstream(t, "local", "http://127.0.0.1:5001"),
				}
				return cfg
			},
		},
		{
			name: "--upstream replaces the file's upstreams and default",
			setup: setup{
				file: "default: b\nupstreams:\n  - name: a\n    url: https://a.example\n  - name: b\n    url: https://b.example\n    ttl: 5s\n",
				args: []string{"-upstream", "ghcr.io=https://ghcr.io"},
			},
			want: func(t *testing.T) *Config {
				cfg := Defaults()
				cfg.Default, cfg.Upstreams = "ghcr.io", []Upstream{upstream(t, "ghcr.io", "https://ghcr.io")}
				return cfg
			},
		},
		{
			name: "password_file with CRLF and only timeouts changed",
			setup: setup{
				file:  "upstreams:\n  - name: docker.io\n    url: https://registry-1.docker.io\n    username: alice\n    password_file: $DIR/pw\n    timeouts:\n      idle: 5m\n",
				files: map[string]string{"pw": "pass word\r\n"},
			},
			want: func(t *testing.T) *Config {
				hub := upstream(t, "docker.io", "https://registry-1.docker.io")
				hub.Username, hub.Password = "alice", "pass word"
				hub.IdleTimeout = 5 * time.Minute
				cfg := Defaults()
				cfg.Upstreams = []Upstream{hub}
				return cfg
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := tt.parse(t)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tt.want(t)
			// Secrets never print, so a mismatch in one would be invisible
			// in the message below; report them first.
			for i := range min(len(got.Upstreams), len(want.Upstreams)) {
				if g, w := got.Upstreams[i].Password.Reveal(), want.Upstreams[i].Password.Reveal(); g != w {
					t.Errorf("Upstreams[%d].Password = %q, want %q", i, g, w)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		if _, err := Parse([]string{arg}, nil); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("Parse(%q) error = %v, want flag.ErrHelp", arg, err)
		}
	}
}

func TestParseNilGetenvUsesEnvironment(t *testing.T) {
	t.Setenv("ENTREPOT_TEST_TOKEN", "from-env")
	path := filepath.Join(t.TempDir(), "entrepot.yaml")
	file := "upstreams:\n  - name: a\n    url: https://a\n    username: u\n    password_env: ENTREPOT_TEST_TOKEN\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]string{"--config", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams[0].Password.Reveal(); got != "from-env" {
		t.Errorf("Password = %q, want %q", got, "from-env")
	}
}
