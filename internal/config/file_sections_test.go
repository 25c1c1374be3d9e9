package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const day = 24 * time.Hour

// TestParseSections covers the storage, warm and admin sections and their
// flags. want changes Defaults().
func TestParseSections(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name string
		setup
		want func(cfg *Config)
	}{
		{
			name: "every key",
			setup: setup{
				file: `storage:
  max_size: 50GiB
  high_watermark: 90%
  low_watermark: 0.8
  max_idle: 30d
  pin:
    - docker.io/library/node:20*
    - ghcr.io/org/*
warm:
  every: 1d12h
  images:
    - docker.io/library/nginx:1.27
    - image: docker.io/library/node:20.*
      platforms: [linux/amd64, linux/arm64/v8]
admin:
  listen: 0.0.0.0:5001
  token_env: ADMIN_TOKEN
`,
				env: map[string]string{"ADMIN_TOKEN": "adm-s3cret"},
			},
			want: func(cfg *Config) {
				cfg.Storage = Storage{
					MaxSize:       50 << 30,
					HighWatermark: 0.9,
					LowWatermark:  0.8,
					MaxIdle:       30 * day,
					Pin:           []string{"docker.io/library/node:20*", "ghcr.io/org/*"},
				}
				cfg.Warm = Warm{Every: 36 * time.Hour, Images: []WarmImage{
					{Image: "docker.io/library/nginx:1.27"},
					{Image: "docker.io/library/node:20.*", Platforms: []string{"linux/amd64", "linux/arm64/v8"}},
				}}
				cfg.Admin = Admin{Listen: "0.0.0.0:5001", Token: "adm-s3cret"}
			},
		},
		{
			name:  "sizes and fractions as YAML numbers",
			setup: setup{file: "storage:\n  max_size: 1048576\n  high_watermark: 1\n  low_watermark: 0.5\n"},
			want: func(cfg *Config) {
				cfg.Storage.MaxSize, cfg.Storage.HighWatermark, cfg.Storage.LowWatermark = 1048576, 1, 0.5
			},
		},
		{
			name:  "zero is off",
			setup: setup{file: "storage:\n  max_size: 0\n  max_idle: 0\nwarm:\n  every: 0s\n  images: []\n"},
			want:  func(cfg *Config) {},
		},
		{
			name:  "empty sections keep the defaults",
			setup: setup{file: "storage:\nwarm: {}\nadmin:\n"},
			want:  func(cfg *Config) {},
		},
		{
			name:  "SI size with a space, decimal percentages, idle in hours",
			setup: setup{file: "storage:\n  max_size: 1.5 TB\n  high_watermark: 97.5%\n  low_watermark: '50 %'\n  max_idle: 12h\n"},
			want: func(cfg *Config) {
				cfg.Storage.MaxSize, cfg.Storage.HighWatermark, cfg.Storage.LowWatermark = 1.5e12, 0.975, 0.5
				cfg.Storage.MaxIdle = 12 * time.Hour
			},
		},
		{
			name:  "only high_watermark, above the default low",
			setup: setup{file: "storage:\n  high_watermark: 90%\n"},
			want:  func(cfg *Config) { cfg.Storage.HighWatermark = 0.9 },
		},
		{
			name:  "--max-size without a file",
			setup: setup{args: []string{"--max-size", "512MiB"}},
			want:  func(cfg *Config) { cfg.Storage.MaxSize = 512 << 20 },
		},
		{
			name:  "--max-size overrides the file",
			setup: setup{file: "storage:\n  max_size: 1GiB\n", args: []string{"--max-size=500MB"}},
			want:  func(cfg *Config) { cfg.Storage.MaxSize = 500e6 },
		},
		{
			name:  "--max-size 0 lifts the file's bound",
			setup: setup{file: "storage:\n  max_size: 1GiB\n", args: []string{"--max-size", "0"}},
			want:  func(cfg *Config) {},
		},
		{
			name:  "--admin-listen overrides the file",
			setup: setup{file: "admin:\n  listen: 127.0.0.2:6001\n", args: []string{"--admin-listen", "[::1]:6001"}},
			want:  func(cfg *Config) { cfg.Admin.Listen = "[::1]:6001" },
		},
		{
			name: "token_file, CRLF trimmed, lets the admin API listen everywhere",
			setup: setup{
				file:  "admin:\n  listen: :5001\n  token_file: $DIR/admin-token\n",
				files: map[string]string{"admin-token": "adm s3cret\r\n"},
			},
			want: func(cfg *Config) { cfg.Admin = Admin{Listen: ":5001", Token: "adm s3cret"} },
		},
		{
			name: "warm images with a port, a digest and star tags",
			setup: setup{file: `warm:
  images:
    - localhost:5000/team/app:v1.*
    - docker.io/library/nginx@` + digest + `
    - ghcr.io/org/app:*
    - docker.io/library/nginx
    - image: quay.io/org/tool:1.2.3
    - image: registry.k8s.io/pause:3.*
      platforms: [linux/arm/v7]
`},
			want: func(cfg *Config) {
				cfg.Warm.Images = []WarmImage{
					{Image: "localhost:5000/team/app:v1.*"},
					{Image: "docker.io/library/nginx@" + digest},
					{Image: "ghcr.io/org/app:*"},
					{Image: "docker.io/library/nginx"},
					{Image: "quay.io/org/tool:1.2.3"},
					{Image: "registry.k8s.io/pause:3.*", Platforms: []string{"linux/arm/v7"}},
				}
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
			want := Defaults()
			tt.want(want)
			// Secrets print as REDACTED: compare the token first.
			if g, w := got.Admin.Token.Reveal(), want.Admin.Token.Reveal(); g != w {
				t.Errorf("Admin.Token = %q, want %q", g, w)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseSectionErrors(t *testing.T) {
	tests := []struct {
		name string
		setup
		// want are substrings of the error; "$FILE" is the config file.
		want []string
	}{
		// The sections as YAML.
		{name: "storage is a string", setup: setup{file: "storage: big\n"}, want: []string{"$FILE:1: cannot unmarshal !!str `big` into a storage mapping"}},
		{name: "warm is a number", setup: setup{file: "warm: 1\n"}, want: []string{"$FILE:1: cannot unmarshal !!int `1` into a warm mapping"}},
		{name: "admin is a list", setup: setup{file: "admin: [a]\n"}, want: []string{"$FILE:1: cannot unmarshal !!seq into an admin mapping"}},
		{name: "unknown storage key", setup: setup{file: "storage:\n  max_sise: 1GiB\n"}, want: []string{`$FILE:2: unknown key "max_sise"`}},
		{name: "unknown warm key", setup: setup{file: "warm:\n  image: []\n"}, want: []string{`$FILE:2: unknown key "image"`}},
		{name: "unknown admin key", setup: setup{file: "admin:\n  token: s3cret\n"}, want: []string{`$FILE:2: unknown key "token"`}},
		{name: "unknown image key", setup: setup{file: "warm:\n  images:\n    - image: docker.io/library/nginx:1\n      platform: linux/amd64\n"}, want: []string{`$FILE:4: unknown key "platform"`}},
		{name: "two unknown image keys and another", setup: setup{file: "warm:\n  images:\n    - a: 1\n      b: 2\nfoo: 3\n"}, want: []string{`$FILE:3: unknown key "a"; $FILE:4: unknown key "b"; $FILE:5: unknown key "foo"`}},
		{name: "duplicate image key", setup: setup{file: "warm:\n  images:\n    - image: a\n      image: b\n"}, want: []string{`$FILE:4: mapping key "image" already defined at line 3`}},
		{name: "images is a string", setup: setup{file: "warm:\n  images: nginx\n"}, want: []string{"$FILE:2: cannot unmarshal !!str `nginx` into a list of images"}},
		{name: "image entry is a list", setup: setup{file: "warm:\n  images:\n    - [a]\n"}, want: []string{"$FILE:3: cannot unmarshal !!seq into an image or an image mapping"}},
		{name: "platforms is a string", setup: setup{file: "warm:\n  images:\n    - image: docker.io/library/nginx:1\n      platforms: linux/amd64\n"}, want: []string{"$FILE:4: cannot unmarshal !!str `linux/a...` into []string"}},
		{name: "pin is a string", setup: setup{file: "storage:\n  pin: docker.io/x\n"}, want: []string{"$FILE:2: cannot unmarshal !!str `docker....` into []string"}},

		// storage.
		{name: "max_size garbage", setup: setup{file: "storage:\n  max_size: lots\n"}, want: []string{`$FILE: storage.max_size: "lots" is not a size, e.g. 50GiB, 500MB or 1048576 (bytes)`}},
		{name: "max_size negative", setup: setup{file: "storage:\n  max_size: -1GiB\n"}, want: []string{`$FILE: storage.max_size: "-1GiB" must not be negative`}},
		{name: "max_size unknown unit", setup: setup{file: "storage:\n  max_size: 50Gb\n"}, want: []string{`storage.max_size: "50Gb" has an unknown unit "Gb"`}},
		{name: "max_size too large", setup: setup{file: "storage:\n  max_size: 99999999999TiB\n"}, want: []string{`storage.max_size: "99999999999TiB" is too large`}},
		{name: "max_size fraction of a byte", setup: setup{file: "storage:\n  max_size: 1.5\n"}, want: []string{`storage.max_size: "1.5" is a fraction of a byte`}},
		{name: "max_size YAML float", setup: setup{file: "storage:\n  max_size: 1e9\n"}, want: []string{`storage.max_size: "1e9" has an unknown unit "e9"`}},
		{name: "high_watermark zero", setup: setup{file: "storage:\n  high_watermark: 0\n"}, want: []string{`$FILE: storage.high_watermark: "0" must be a percentage or a fraction above 0 and at most 1, e.g. 95% or 0.95`}},
		{name: "high_watermark above 100%", setup: setup{file: "storage:\n  high_watermark: 120%\n"}, want: []string{`storage.high_watermark: "120%" must be a percentage`}},
		{name: "high_watermark NaN", setup: setup{file: "storage:\n  high_watermark: .nan\n"}, want: []string{`storage.high_watermark: ".nan" must be a percentage`}},
		{name: "low_watermark without %", setup: setup{file: "storage:\n  low_watermark: 85\n"}, want: []string{`storage.low_watermark: "85" must be a percentage`}},
		{name: "low_watermark negative", setup: setup{file: "storage:\n  low_watermark: -10%\n"}, want: []string{`storage.low_watermark: "-10%" must be a percentage`}},
		{name: "low_watermark empty", setup: setup{file: "storage:\n  low_watermark: ''\n"}, want: []string{`storage.low_watermark: "" must be a percentage`}},
		{name: "low above high", setup: setup{file: "storage:\n  high_watermark: 80%\n  low_watermark: 90%\n"}, want: []string{"$FILE: storage.low_watermark: 90% must be below storage.high_watermark (80%)"}},
		{name: "low equals high", setup: setup{file: "storage:\n  high_watermark: 0.9\n  low_watermark: 90%\n"}, want: []string{"storage.low_watermark: 90% must be below storage.high_watermark (90%)"}},
		{name: "default low above high", setup: setup{file: "storage:\n  high_watermark: 80%\n"}, want: []string{"storage.low_watermark: 85% (the default) must be below storage.high_watermark (80%)"}},
		{name: "max_idle without unit", setup: setup{file: "storage:\n  max_idle: 30\n"}, want: []string{`$FILE: storage.max_idle: "30" has no unit; use a unit, e.g. 30d or 12h`}},
		{name: "max_idle days without unit after", setup: setup{file: "storage:\n  max_idle: 1d5\n"}, want: []string{`storage.max_idle: "1d5" has no unit`}},
		{name: "max_idle negative", setup: setup{file: "storage:\n  max_idle: -1d\n"}, want: []string{`storage.max_idle: "-1d" must not be negative`}},
		{name: "max_idle negative hours", setup: setup{file: "storage:\n  max_idle: -1h\n"}, want: []string{`storage.max_idle: "-1h" must not be negative`}},
		{name: "max_idle not a duration", setup: setup{file: "storage:\n  max_idle: soon\n"}, want: []string{`storage.max_idle: "soon" is not a duration, e.g. 30d, 12h or 1d12h`}},
		{name: "max_idle negative after days", setup: setup{file: "storage:\n  max_idle: 1d-1h\n"}, want: []string{`storage.max_idle: "1d-1h" is not a duration`}},
		{name: "max_idle fractional days", setup: setup{file: "storage:\n  max_idle: 1.5d\n"}, want: []string{`storage.max_idle: "1.5d" is not a duration`}},
		{name: "max_idle days after hours", setup: setup{file: "storage:\n  max_idle: 12h1d\n"}, want: []string{`storage.max_idle: "12h1d" is not a duration`}},
		{name: "max_idle too long", setup: setup{file: "storage:\n  max_idle: 999999d\n"}, want: []string{`storage.max_idle: "999999d" is too long`}},
		{name: "max_idle too long with hours", setup: setup{file: "storage:\n  max_idle: 106751d24h\n"}, want: []string{`storage.max_idle: "106751d24h" is too long`}},
		{name: "pin without registry", setup: setup{file: "storage:\n  pin:\n    - docker.io/library/node:20*\n    - node:20*\n"}, want: []string{`$FILE: storage.pin[1]: pattern "node:20*" must start with a registry, e.g. docker.io/library/node:20*`}},
		{name: "pin empty", setup: setup{file: "storage:\n  pin: ['']\n"}, want: []string{"storage.pin[0]: empty pattern"}},
		{name: "pin bad character", setup: setup{file: "storage:\n  pin: ['docker.io/a b']\n"}, want: []string{`storage.pin[0]: pattern "docker.io/a b": character ' ' is not allowed`}},
		{name: "--max-size garbage", setup: setup{args: []string{"--max-size", "big"}}, want: []string{`--max-size: "big" is not a size`}},
		{name: "--max-size negative", setup: setup{args: []string{"--max-size=-5MiB"}}, want: []string{`--max-size: "-5MiB" must not be negative`}},
		{name: "--max-size checked after a good file", setup: setup{file: "storage:\n  max_size: 1GiB\n", args: []string{"--max-size", "1 gig"}}, want: []string{`--max-size: "1 gig" has an unknown unit "gig"`}},

		// warm.
		{name: "every without unit", setup: setup{file: "warm:\n  every: 6\n"}, want: []string{`$FILE: warm.every: "6" has no unit; use a unit, e.g. 30d or 12h`}},
		{name: "every negative", setup: setup{file: "warm:\n  every: -6h\n"}, want: []string{`warm.every: "-6h" must not be negative`}},
		{name: "image without registry", setup: setup{file: "warm:\n  images:\n    - nginx:1.27\n"}, want: []string{`$FILE: warm.images[0]: "nginx:1.27" must start with a registry, e.g. docker.io/library/nginx:1.27`}},
		{name: "image with a namespace but no registry", setup: setup{file: "warm:\n  images:\n    - docker.io/library/nginx:1\n    - bitnami/redis:7.*\n"}, want: []string{`warm.images[1]: "bitnami/redis:7.*" must start with a registry, e.g. docker.io/bitnami/redis:7.*`}},
		{name: "image mapping without registry", setup: setup{file: "warm:\n  images:\n    - image: node@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"}, want: []string{`warm.images[0].image: "node@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" must start with a registry, e.g. docker.io/library/node@sha256:0123`}},
		{name: "image not even a reference", setup: setup{file: "warm:\n  images:\n    - 'Nginx:1'\n"}, want: []string{`warm.images[0]: "Nginx:1" must start with a registry, e.g. docker.io/library/nginx:1.27`}},
		{name: "image mapping without image", setup: setup{file: "warm:\n  images:\n    - docker.io/library/nginx:1\n    - platforms: [linux/amd64]\n"}, want: []string{"$FILE: warm.images[1].image: is required"}},
		{name: "image empty string", setup: setup{file: "warm:\n  images: ['']\n"}, want: []string{"warm.images[0]: is required"}},
		{name: "image bad tag pattern", setup: setup{file: "warm:\n  images:\n    - docker.io/library/nginx:.*\n"}, want: []string{`warm.images[0]: "docker.io/library/nginx:.*" has an invalid tag pattern ".*"`}},
		{name: "image bad tag", setup: setup{file: "warm:\n  images:\n    - docker.io/library/nginx:-1\n"}, want: []string{`warm.images[0]: image reference "docker.io/library/nginx:-1": invalid tag "-1"`}},
		{name: "image uppercase repository", setup: setup{file: "warm:\n  images:\n    - docker.io/library/Nginx:1\n"}, want: []string{`warm.images[0]: image reference "docker.io/library/Nginx:1": invalid repository name "library/Nginx"`}},
		{name: "image star in repository", setup: setup{file: "warm:\n  images:\n    - docker.io/library/*:1.*\n"}, want: []string{`warm.images[0]: image reference "docker.io/library/*": invalid repository name "library/*"`}},
		{name: "image bad digest", setup: setup{file: "warm:\n  images:\n    - image: docker.io/library/nginx@sha256:abc\n"}, want: []string{`warm.images[0].image: image reference "docker.io/library/nginx@sha256:abc": invalid digest`}},
		{name: "platform without arch", setup: setup{file: "warm:\n  images:\n    - image: docker.io/library/nginx:1\n      platforms: [linux]\n"}, want: []string{`$FILE: warm.images[0].platforms[0]: "linux" must be os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64/v8`}},
		{name: "platform uppercase", setup: setup{file: "warm:\n  images:\n    - image: docker.io/library/nginx:1\n      platforms: [linux/amd64, Linux/ARM64]\n"}, want: []string{`warm.images[0].platforms[1]: "Linux/ARM64" must be os/arch`}},
		{name: "platform too deep", setup: setup{file: "warm:\n  images:\n    - image: docker.io/library/nginx:1\n      platforms: [linux/arm64/v8/x]\n"}, want: []string{`warm.images[0].platforms[0]: "linux/arm64/v8/x" must be os/arch`}},
		{name: "platform empty part", setup: setup{file: "warm:\n  images:\n    - image: docker.io/library/nginx:1\n      platforms: [linux//v8]\n"}, want: []string{`warm.images[0].platforms[0]: "linux//v8" must be os/arch`}},

		// admin.
		{name: "admin listen without port", setup: setup{file: "admin:\n  listen: '5001'\n"}, want: []string{`$FILE: admin.listen: "5001" must be host:port`}},
		{name: "--admin-listen without port", setup: setup{args: []string{"--admin-listen", "localhost"}}, want: []string{`--admin-listen: "localhost" must be host:port`}},
		{name: "token_env and token_file", setup: setup{file: "admin:\n  token_env: ADMIN_TOKEN\n  token_file: $DIR/t\n", env: map[string]string{"ADMIN_TOKEN": "t"}, files: map[string]string{"t": "t"}}, want: []string{"$FILE: admin: set token_env or token_file, not both"}},
		{name: "token_env not set", setup: setup{file: "admin:\n  token_env: ADMIN_TOKEN\n"}, want: []string{"$FILE: admin.token_env: ADMIN_TOKEN is not set (or is empty)"}},
		{name: "token_env empty", setup: setup{file: "admin:\n  token_env: ADMIN_TOKEN\n", env: map[string]string{"ADMIN_TOKEN": ""}}, want: []string{"admin.token_env: ADMIN_TOKEN is not set (or is empty)"}},
		{name: "token_file missing", setup: setup{file: "admin:\n  token_file: $DIR/nope\n"}, want: []string{"$FILE: admin.token_file: open ", "/nope: no such file"}},
		{name: "token_file empty", setup: setup{file: "admin:\n  token_file: $DIR/t\n", files: map[string]string{"t": "\r\n"}}, want: []string{"admin.token_file: ", "/t is empty"}},
		{name: "admin on the registry's address", setup: setup{file: "listen: 127.0.0.1:5001\n"}, want: []string{`admin.listen: "127.0.0.1:5001" is also the address of listen; the admin API needs one of its own`}},
		{name: "--admin-listen on the address of --listen", setup: setup{args: []string{"--listen", "127.0.0.1:6000", "--admin-listen", "127.0.0.1:6000"}}, want: []string{`--admin-listen: "127.0.0.1:6000" is also the address of --listen; the admin API needs one of its own`}},
		{name: "the same address even with a token", setup: setup{file: "listen: :6000\nadmin:\n  listen: :6000\n  token_env: T\n", env: map[string]string{"T": "t"}}, want: []string{`admin.listen: ":6000" is also the address of listen`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.wantError(t, tt.want...)
		})
	}
}

// TestAdminLoopbackRule crosses admin addresses with the ways of giving a
// token, the address set by the file or by --admin-listen: without a token
// only a loopback address is accepted.
func TestAdminLoopbackRule(t *testing.T) {
	addrs := []struct {
		addr     string
		loopback bool
	}{
		{"127.0.0.1:5001", true},
		{"127.45.6.7:5001", true},
		{"[::1]:5001", true},
		{"localhost:5001", true},
		{":5001", false},
		{"0.0.0.0:5001", false},
		{"[::]:5001", false},
		{"10.1.2.3:5001", false},
		{"[fe80::1]:5001", false},
		{"example.com:5001", false},
		{"localhost.example.com:5001", false},
	}
	tokens := []struct{ name, yaml string }{
		{"no token", ""},
		{"token_env", "  token_env: ADMIN_TOKEN\n"},
		{"token_file", "  token_file: $DIR/admin-token\n"},
	}
	for _, a := range addrs {
		for _, tok := range tokens {
			for _, byFlag := range []bool{false, true} {
				key, s := "admin.listen", setup{
					env:   map[string]string{"ADMIN_TOKEN": "adm-s3cret"},
					files: map[string]string{"admin-token": "adm-s3cret\n"},
				}
				if byFlag {
					key = "--admin-listen"
					s.file = "admin:\n  listen: 127.0.0.1:9999\n" + tok.yaml
					s.args = []string{"--admin-listen", a.addr}
				} else {
					s.file = fmt.Sprintf("admin:\n  listen: %q\n%s", a.addr, tok.yaml)
				}
				name := fmt.Sprintf("%s/%s/%s", key, a.addr, tok.name)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					if !a.loopback && tok.yaml == "" {
						s.wantError(t, fmt.Sprintf("%s: %q is not a loopback address; set admin.token_env or admin.token_file to listen on it", key, a.addr))
						return
					}
					cfg, _, err := s.parse(t)
					if err != nil {
						t.Fatalf("Parse: %v", err)
					}
					wantToken := ""
					if tok.yaml != "" {
						wantToken = "adm-s3cret"
					}
					if cfg.Admin.Listen != a.addr || cfg.Admin.Token.Reveal() != wantToken {
						t.Errorf("Admin = {%q, %q}, want {%q, %q}", cfg.Admin.Listen, cfg.Admin.Token.Reveal(), a.addr, wantToken)
					}
				})
			}
		}
	}
}

// TestAdminLoopbackErrorIsExact pins the message of the loopback rule
// whole, with nothing before or after it.
func TestAdminLoopbackErrorIsExact(t *testing.T) {
	_, _, err := setup{args: []string{"--admin-listen", "0.0.0.0:5001"}}.parse(t)
	const want = `--admin-listen: "0.0.0.0:5001" is not a loopback address; set admin.token_env or admin.token_file to listen on it`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse error = %v, want %q", err, want)
	}
	_, _, err = setup{file: "admin:\n  listen: 0.0.0.0:5001\n"}.parse(t)
	if want := strings.TrimPrefix(want, "--admin-listen"); err == nil || err.Error() != "admin.listen"+want {
		t.Fatalf("Parse error = %v, want %q", err, "admin.listen"+want)
	}
}
