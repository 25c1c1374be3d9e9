package config

import (
	"reflect"
	"testing"
)

// TestParsePolicy reads the approved-images keys of upstreams.
func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		name, extra  string
		allow, deny  []string
		approvedOnly bool
	}{
		{name: "absent: no policy"},
		{
			name:  "deny alone",
			extra: "    deny:\n      - library/nginx:latest\n      - evil/*\n",
			deny:  []string{"library/nginx:latest", "evil/*"},
		},
		{
			name:         "approved_only with allow and deny",
			extra:        "    approved_only: true\n    allow: [library/nginx, 'library/node:20*', 'myorg/**', 'library/*:1.27.*', '*nginx']\n    deny: ['library/node:20.0*']\n",
			allow:        []string{"library/nginx", "library/node:20*", "myorg/**", "library/*:1.27.*", "*nginx"},
			deny:         []string{"library/node:20.0*"},
			approvedOnly: true,
		},
		{
			name:         "approved_only without allow serves nothing",
			extra:        "    approved_only: true\n",
			approvedOnly: true,
		},
		{
			name:  "approved_only false and deny",
			extra: "    approved_only: false\n    deny: [library/nginx]\n",
			deny:  []string{"library/nginx"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := setup{file: upstreamFile(tc.extra)}.parse(t)
			if err != nil {
				t.Fatal(err)
			}
			u := cfg.Upstreams[0]
			if !reflect.DeepEqual(u.Allow, tc.allow) || !reflect.DeepEqual(u.Deny, tc.deny) || u.ApprovedOnly != tc.approvedOnly {
				t.Fatalf("allow %q, deny %q, approved_only %v; want %q, %q, %v", u.Allow, u.Deny, u.ApprovedOnly, tc.allow, tc.deny, tc.approvedOnly)
			}
		})
	}
}

// A policy is refused at start-up with the key of the pattern at fault.
func TestParsePolicyErrors(t *testing.T) {
	second := "  - name: ghcr.io\n    url: https://ghcr.io\n"
	for _, tc := range []struct {
		name string
		file string
		want string
	}{
		{"allow without approved_only", upstreamFile("    allow: [library/nginx]\n"),
			"$FILE: upstreams[0].allow: needs approved_only: true; without it every image that deny does not name is served, and allow changes nothing"},
		{"allow with approved_only false", upstreamFile("    approved_only: false\n    allow: [library/nginx]\n"),
			"upstreams[0].allow: needs approved_only: true"},
		{"registry written out", upstreamFile("    deny: [library/a, docker.io/library/nginx]\n"),
			`$FILE: upstreams[0].deny[1]: pattern "docker.io/library/nginx": patterns are relative to the upstream; write "library/nginx"`},
		{"URL host written out", upstreamFile("    deny: [registry-1.docker.io/library/nginx]\n"),
			`upstreams[0].deny[0]: pattern "registry-1.docker.io/library/nginx": patterns are relative to the upstream; write "library/nginx"`},
		{"port of the name written out", "upstreams:\n  - name: localhost:5000\n    url: http://localhost:5000\n    deny: ['localhost:5000/x:1']\n",
			`upstreams[0].deny[0]: pattern "localhost:5000/x:1": patterns are relative to the upstream; write "x:1"`},
		{"Docker Hub official image without library/", upstreamFile("    approved_only: true\n    allow: [library/node, 'nginx:1.27']\n"),
			`upstreams[0].allow[1]: pattern "nginx:1.27": Docker Hub's official images are under library/; write "library/nginx:1.27"`},
		{"digest", upstreamFile("    deny: ['library/nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef']\n"),
			`upstreams[0].deny[0]: pattern "library/nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" names a digest`},
		{"uppercase", upstreamFile("    deny: [library/Nginx]\n"),
			`upstreams[0].deny[0]: pattern "library/Nginx": "library/Nginx" is not a repository pattern`},
		{"empty", upstreamFile("    deny: ['']\n"), "upstreams[0].deny[0]: empty pattern"},
		{"bad tag", upstreamFile("    deny: ['library/nginx:.x']\n"), `upstreams[0].deny[0]: pattern "library/nginx:.x": ".x" is not a tag pattern`},
		{"second upstream", upstreamFile(second + "    approved_only: true\n    allow: [org/app, 'org/app:']\n"),
			`upstreams[1].allow[1]: pattern "org/app:": "" is not a tag pattern`},
		{"allow is a string", upstreamFile("    allow: library/nginx\n"), "$FILE:4: cannot unmarshal !!str `library...` into []string"},
		{"approved_only is a string", upstreamFile("    approved_only: yes please\n"), "$FILE:4: cannot unmarshal !!str `yes please` into bool"},
		{"unknown key", upstreamFile("    approve_only: true\n"), `$FILE:4: unknown key "approve_only"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			setup{file: tc.file}.wantError(t, tc.want)
		})
	}
}

// Outside Docker Hub a one-part repository is just that: nginx is a
// repository of its own.
func TestPolicyOneLevelNameOutsideDockerHub(t *testing.T) {
	cfg, _, err := setup{file: "upstreams:\n  - name: registry.example.com\n    url: https://registry.example.com\n    deny: [nginx]\n"}.parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams[0].Deny; !reflect.DeepEqual(got, []string{"nginx"}) {
		t.Fatalf("deny = %q", got)
	}
}
