package config

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestParseAuth(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	files := map[string]string{
		"htpasswd": "alice:" + string(hash) + "\n",
		"md5":      "alice:$apr1$abc$def\n",
		"tokens":   "ci:0123456789abcdef0123\nbot:fedcba9876543210fedc\n",
		"key":      "0123456789abcdef0123456789abcdef",
	}
	const ups = "upstreams:\n  - name: docker.io\n    url: https://registry-1.docker.io\n  - name: ghcr.io\n    url: https://ghcr.io\n"
	cfg, _, err := setup{files: files, file: ups + `auth:
  htpasswd: $DIR/htpasswd
  tokens_file: $DIR/tokens
  token_key_file: $DIR/key
  anonymous: [docker.io, ghcr.io/public/*]
  groups: {ci: [ci, bot]}
  token_ttl: 10m
access:
  - users: [alice, group:ci]
    repos: [docker.io/library/*]
    actions: [pull]
`}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Auth
	if !a.Enabled() || a.Tokens["0123456789abcdef0123"] != "ci" || a.TokenTTL != 10*time.Minute || len(a.TokenKey.Reveal()) != 32 ||
		strings.Join(a.Anonymous, " ") != "docker.io/* ghcr.io/public/*" || len(cfg.Access) != 1 || cfg.Access[0].Index != 0 {
		t.Fatalf("auth: %+v, access %+v", a, cfg.Access)
	}
	if d := Defaults(); d.Auth.Enabled() || d.Auth.TokenTTL != 5*time.Minute {
		t.Fatalf("default auth: %+v", d.Auth)
	}

	for _, tc := range []struct{ file, want string }{
		{"auth:\n  htpasswd: $DIR/none\n", "auth.htpasswd: open"},
		{"auth:\n  htpasswd: $DIR/md5\n", "only bcrypt hashes"},
		{"auth:\n  tokens_file: $DIR/md5\n", "auth.tokens_file: entry 1: the token of \"alice\" is shorter than 16"},
		{"auth:\n  tokens_env: NOPE\n", "NOPE"},
		{"auth:\n  htpasswd: $DIR/htpasswd\n  token_ttl: 1s\n", "auth.token_ttl"},
		{"auth:\n  htpasswd: $DIR/htpasswd\n  token_key_file: $DIR/tokens\n", ""},
		{"auth:\n  htpasswd: $DIR/htpasswd\n  realm: ftp://x\n", "auth.realm"},
		{"auth:\n  htpasswd: $DIR/htpasswd\n  anonymous: [quay.io]\n", `auth.anonymous[0]: pattern "quay.io" must start with a registry`},
		{"auth:\n  htpasswd: $DIR/htpasswd\n  anonymous: [quay.io/x/*]\n", `"quay.io" is not an upstream`},
		{"access:\n  - users: [alice]\n    repos: [docker.io/*]\n    actions: [pull]\n", "need authentication"},
		{"auth:\n  htpasswd: $DIR/htpasswd\naccess:\n  - users: [group:ops]\n    repos: [docker.io/*]\n    actions: [pull]\n", `access[0].users[0]: no group "ops"`},
		{"auth:\n  htpasswd: $DIR/htpasswd\naccess:\n  - users: [alice]\n    repos: [docker.io/*]\n    actions: [delete]\n", `access[0].actions[0]: "delete" is not pull, push or admin`},
		{"auth:\n  htpasswd: $DIR/htpasswd\naccess:\n  - users: [alice]\n    repos: [nginx]\n    actions: [pull]\n", "access[0].repos[0]"},
		{"auth:\n  htpasswd: $DIR/htpasswd\naccess:\n  - users: [alice]\n    actions: [pull]\n", "access[0].users, repos, actions"},
	} {
		_, _, err := setup{files: files, file: ups + tc.file}.parse(t)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.file, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want an error with %q", tc.file, err, tc.want)
		}
	}
}
