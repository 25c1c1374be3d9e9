package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDerive(t *testing.T) {
	const file = `upstreams:
  - name: docker.io
    url: https://registry-1.docker.io
  - name: internal
    url: http://127.0.0.1:5002
derive:
  - name: vault
    from: docker.io/hashicorp/vault:1.14
    volumes: [/etc/vault]
    env: {VAULT_LOG_LEVEL: info}
    files:
      - {path: /etc/vault, dir: true, mode: "0777"}
  - name: app
    from: internal/team/app@sha256:` + "0000000000000000000000000000000000000000000000000000000000000000" + `
    tag: v2
  - name: nginx
    from: nginx
warm:
  images: [derived/vault:1.14]
`
	cfg, _, err := setup{file: file}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Derive) != 3 || cfg.Derive[0].Files[0].Mode != "0777" || cfg.Derive[0].Env["VAULT_LOG_LEVEL"] != "info" {
		t.Fatalf("derive: %+v", cfg.Derive)
	}
	for _, tc := range []struct {
		i    int
		want DeriveBase
	}{
		{0, DeriveBase{Upstream: "docker.io", Repo: "hashicorp/vault", Tag: "1.14"}},
		{1, DeriveBase{Upstream: "internal", Repo: "team/app", Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}},
		{2, DeriveBase{Upstream: "docker.io", Repo: "library/nginx", Tag: "latest"}},
	} {
		if got, err := cfg.Base(cfg.Derive[tc.i]); err != nil || got != tc.want {
			t.Errorf("Base(%s) = %+v, %v; want %+v", cfg.Derive[tc.i].From, got, err, tc.want)
		}
	}
	// An upstream addressed by its URL's host.
	byHost := cfg.Derive[0]
	byHost.From = "127.0.0.1:5002/team/app:1"
	if got, err := cfg.Base(byHost); err != nil || got.Upstream != "internal" || got.Repo != "team/app" {
		t.Errorf("by host: %+v, %v", got, err)
	}
}

func TestParseDeriveErrors(t *testing.T) {
	dir := t.TempDir()
	const ups = "upstreams:\n  - name: docker.io\n    url: https://registry-1.docker.io\n"
	for _, tc := range []struct{ name, file, want string }{
		{"run", ups + "derive:\n  - name: vault\n    from: docker.io/hashicorp/vault:1.14\n    run: mkdir /etc/vault\n",
			"files"},
		{"build_commands", ups + "derive:\n  - name: vault\n    from: docker.io/hashicorp/vault:1.14\n    build_commands: [\"RUN chmod 777 /etc/vault\"]\n",
			"mode"},
		{"base not served", ups + "derive:\n  - name: app\n    from: ghcr.io/org/app:1\n",
			"derive[app].from: no configured upstream serves ghcr.io"},
		{"duplicate", ups + "derive:\n  - {name: a, from: nginx}\n  - {name: a, from: alpine}\n",
			`derive[1].name: duplicate "a"`},
		{"upstream named derived", "upstreams:\n  - name: derived\n    url: http://127.0.0.1:5002\nderive:\n  - {name: a, from: derived/x:1}\n",
			`"derived" is the name derived images are served under`},
		{"invalid mode", ups + "derive:\n  - name: a\n    from: nginx\n    files: [{path: /x, dir: true, mode: \"0999\"}]\n",
			"derive[a].files[0].mode"},
		{"warm of an unknown derived image", ups + "derive:\n  - {name: a, from: nginx}\nwarm:\n  images: [derived/b:1]\n",
			`warm.images[0]: "derived/b:1": no derived image "b" is configured`},
		{"missing source", ups + "derive:\n  - name: a\n    from: nginx\n    files: [{path: /x, source: " + filepath.Join(dir, "nope") + "}]\n",
			"derive[a].files[0].source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := setup{file: tc.file}.parse(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v; want an error with %q", err, tc.want)
			}
		})
	}
	src := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (setup{file: ups + "derive:\n  - name: a\n    from: nginx\n    files: [{path: /x, source: " + src + "}]\n"}).parse(t); err != nil {
		t.Fatalf("a readable source: %v", err)
	}
}
