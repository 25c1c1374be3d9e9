package config

import (
	"strings"
	"testing"
)

// upstreamFile is a config file with one upstream, "docker.io", whose
// extra lines (indented for the list entry) are appended.
func upstreamFile(extra string) string {
	return "upstreams:\n  - name: docker.io\n    url: https://registry-1.docker.io\n" + extra
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		setup
		// want are substrings of the error; "$FILE" is the config file.
		want []string
	}{
		// Command line.
		{name: "unknown flag", setup: setup{args: []string{"--nope"}}, want: []string{"-nope"}},
		{name: "flag without value", setup: setup{args: []string{"--listen"}}, want: []string{"-listen"}},
		{name: "positional argument not a file", setup: setup{args: []string{"--data", "d", "extra"}}, want: []string{`--config: open extra: no such file or directory`}},
		{name: "two positional arguments", setup: setup{args: []string{"a.yaml", "b.yaml"}}, want: []string{`unexpected argument "b.yaml": one configuration file only`}},
		{name: "positional argument and --config", setup: setup{args: []string{"--config", "a.yaml", "b.yaml"}}, want: []string{`unexpected argument "b.yaml": the configuration file is "a.yaml" (--config)`}},
		{name: "--upstream without =", setup: setup{args: []string{"--upstream", "foo"}}, want: []string{`--upstream "foo": want NAME=URL`}},
		{name: "--upstream uppercase name", setup: setup{args: []string{"--upstream", "Foo=https://foo"}}, want: []string{`--upstream "Foo=https://foo": name "Foo" must be a lowercase host name`}},
		{name: "--upstream empty name", setup: setup{args: []string{"--upstream", "=https://foo"}}, want: []string{`--upstream "=https://foo": name is required`}},
		{name: "--upstream name with slash", setup: setup{args: []string{"--upstream", "a/b=https://foo"}}, want: []string{`--upstream "a/b=https://foo": name "a/b"`}},
		{name: "--upstream name v2", setup: setup{args: []string{"--upstream", "v2=https://foo"}}, want: []string{`--upstream "v2=https://foo": name "v2" is reserved`}},
		{name: "--upstream ftp url", setup: setup{args: []string{"--upstream", "x=ftp://x"}}, want: []string{`--upstream "x=ftp://x": url "ftp://x" must be an http or https URL`}},
		{name: "--upstream empty url", setup: setup{args: []string{"--upstream", "x="}}, want: []string{`--upstream "x=": url is required`}},
		{name: "--upstream url with credentials", setup: setup{args: []string{"--upstream", "x=https://bob:hunter2@x"}}, want: []string{`--upstream "x=https://bob:xxxxx@x": url "https://bob:xxxxx@x" must not contain credentials; use username and password_env or password_file`}},
		{name: "--upstream duplicate", setup: setup{args: []string{"--upstream", "x=https://x", "--upstream", "x=https://y"}}, want: []string{`--upstream "x=https://y": duplicate name "x"`}},
		{name: "--listen without port", setup: setup{args: []string{"--listen", "5000"}}, want: []string{`--listen: "5000" must be host:port`}},
		{name: "--listen named port", setup: setup{args: []string{"--listen", ":http"}}, want: []string{`--listen: ":http" must have a port from 0 to 65535`}},
		{name: "--listen port out of range", setup: setup{args: []string{"--listen", ":70000"}}, want: []string{`--listen: ":70000" must have a port`}},
		{name: "--listen empty", setup: setup{args: []string{"--listen="}}, want: []string{`--listen: "" must be host:port`}},
		{name: "--prefetch negative", setup: setup{args: []string{"--prefetch", "-1"}}, want: []string{"--prefetch: -1 must be from 0 (off) to 64"}},
		{name: "--prefetch not a number", setup: setup{args: []string{"--prefetch", "many"}}, want: []string{"-prefetch"}},
		{name: "prefetch too large in file", setup: setup{file: "prefetch: 1000\n"}, want: []string{"prefetch: 1000 must be from 0 (off) to 64"}},
		{name: "--data empty", setup: setup{args: []string{"--data="}}, want: []string{"--data: must not be empty"}},
		{name: "--config missing", setup: setup{args: []string{"--config", "$DIR/missing.yaml"}}, want: []string{"--config: open ", "missing.yaml: no such file"}},

		// The file as YAML.
		{name: "YAML syntax error", setup: setup{file: "listen: :5000\n  data: x\n"}, want: []string{"$FILE:2: mapping values are not allowed"}},
		{name: "unknown top-level key", setup: setup{file: "listen: :5000\nlisen: :6000\n"}, want: []string{`$FILE:2: unknown key "lisen"`}},
		{name: "unknown upstream key", setup: setup{file: upstreamFile("    pasword_env: X\n")}, want: []string{`$FILE:4: unknown key "pasword_env"`}},
		{name: "unknown timeouts key", setup: setup{file: upstreamFile("    timeouts:\n      read: 5s\n")}, want: []string{`$FILE:5: unknown key "read"`}},
		{name: "all type errors on one line", setup: setup{file: "foo: 1\nbar: 2\n"}, want: []string{`$FILE:1: unknown key "foo"; $FILE:2: unknown key "bar"`}},
		{name: "list where a string belongs", setup: setup{file: "listen: [1]\n"}, want: []string{"$FILE:1: cannot unmarshal !!seq into string"}},
		{name: "file is a list", setup: setup{file: "- a\n"}, want: []string{"$FILE:1: cannot unmarshal !!seq into a mapping of keys"}},
		{name: "timeouts is a string", setup: setup{file: upstreamFile("    timeouts: 5s\n")}, want: []string{"$FILE:4: cannot unmarshal !!str `5s` into a timeouts mapping"}},
		{name: "duplicate key", setup: setup{file: "listen: :1\nlisten: :2\n"}, want: []string{`$FILE:2: mapping key "listen" already defined at line 1`}},
		{name: "two documents", setup: setup{file: "listen: :1\n---\nlisten: :2\n"}, want: []string{"$FILE: more than one YAML document"}},

		// The file's values.
		{name: "listen", setup: setup{file: "listen: localhost\n"}, want: []string{`$FILE: listen: "localhost" must be host:port`}},
		{name: "data empty", setup: setup{file: "data: ''\n"}, want: []string{"$FILE: data: must not be empty"}},
		{name: "default not configured", setup: setup{file: "default: nope\nupstreams:\n  - name: docker.io\n    url: https://registry-1.docker.io\n  - name: ghcr.io\n    url: https://ghcr.io\n"}, want: []string{`$FILE: default: "nope" is not a configured upstream (configured: docker.io, ghcr.io)`}},
		{name: "default not built in", setup: setup{file: "default: nope\n"}, want: []string{`$FILE: default: "nope" is not a configured upstream (configured: docker.io, ghcr.io, quay.io, registry.k8s.io, gcr.io, public.ecr.aws, mcr.microsoft.com)`}},
		{name: "empty upstream list", setup: setup{file: "upstreams: []\n"}, want: []string{"$FILE: upstreams: must list at least one upstream"}},
		{name: "name missing", setup: setup{file: "upstreams:\n  - url: https://x\n"}, want: []string{"$FILE: upstreams[0].name: is required"}},
		{name: "name uppercase", setup: setup{file: "upstreams:\n  - name: Docker.io\n    url: https://x\n"}, want: []string{`upstreams[0].name: "Docker.io" must be a lowercase host name`}},
		{name: "name with path", setup: setup{file: "upstreams:\n  - name: docker.io/library\n    url: https://x\n"}, want: []string{`upstreams[0].name: "docker.io/library"`}},
		{name: "name with trailing dot", setup: setup{file: "upstreams:\n  - name: 'docker.io.'\n    url: https://x\n"}, want: []string{`upstreams[0].name: "docker.io."`}},
		{name: "name v2", setup: setup{file: "upstreams:\n  - name: v2\n    url: https://x\n"}, want: []string{`upstreams[0].name: "v2" is reserved`}},
		{name: "name duplicate", setup: setup{file: upstreamFile("  - name: ghcr.io\n    url: https://ghcr.io\n  - name: ghcr.io\n    url: https://ghcr.io\n")}, want: []string{`$FILE: upstreams[2].name: duplicate "ghcr.io"`}},
		{name: "url missing", setup: setup{file: "upstreams:\n  - name: x\n"}, want: []string{"upstreams[0].url: is required"}},
		{name: "url ftp", setup: setup{file: upstreamFile("  - name: x\n    url: ftp://x\n")}, want: []string{`$FILE: upstreams[1].url: "ftp://x" must be an http or https URL`}},
		{name: "url without scheme", setup: setup{file: "upstreams:\n  - name: x\n    url: registry.example.com\n"}, want: []string{`upstreams[0].url: "registry.example.com" must be an http or https URL`}},
		{name: "url without host", setup: setup{file: "upstreams:\n  - name: x\n    url: https:///v2\n"}, want: []string{`upstreams[0].url: "https:///v2" must be an http or https URL`}},
		{name: "url with query", setup: setup{file: "upstreams:\n  - name: x\n    url: https://x/?a=b\n"}, want: []string{`upstreams[0].url: "https://x/?a=b" must not have a query or fragment`}},
		{name: "url with fragment", setup: setup{file: "upstreams:\n  - name: x\n    url: https://x#top\n"}, want: []string{`upstreams[0].url: "https://x#top" must not have a query or fragment`}},
		{name: "url with credentials", setup: setup{file: "upstreams:\n  - name: x\n    url: https://bob:hunter2@x\n"}, want: []string{`upstreams[0].url: "https://bob:xxxxx@x" must not contain credentials; use username and password_env or password_file`}},
		{name: "url malformed", setup: setup{file: "upstreams:\n  - name: x\n    url: 'http://x:port'\n"}, want: []string{`upstreams[0].url: is malformed: invalid port ":port" after host`}},
		{name: "ttl without unit", setup: setup{file: upstreamFile("    ttl: 60\n")}, want: []string{`upstreams[0].ttl: "60" has no unit; use a unit, e.g. 60s`}},
		{name: "ttl not a duration", setup: setup{file: upstreamFile("    ttl: soon\n")}, want: []string{`upstreams[0].ttl: "soon" is not a duration`}},
		{name: "ttl negative", setup: setup{file: upstreamFile("    ttl: -1s\n")}, want: []string{`upstreams[0].ttl: "-1s" must not be negative`}},
		{name: "connect zero", setup: setup{file: upstreamFile("    timeouts:\n      connect: 0s\n")}, want: []string{`upstreams[0].timeouts.connect: "0s" must be positive`}},
		{name: "connect without unit", setup: setup{file: upstreamFile("    timeouts:\n      connect: 5\n")}, want: []string{`upstreams[0].timeouts.connect: "5" has no unit; use a unit, e.g. 60s`}},
		{name: "response_header negative", setup: setup{file: upstreamFile("    timeouts:\n      response_header: -15s\n")}, want: []string{`upstreams[0].timeouts.response_header: "-15s" must not be negative`}},
		{name: "idle zero", setup: setup{file: upstreamFile("    timeouts:\n      idle: 0\n")}, want: []string{`upstreams[0].timeouts.idle: "0" must be positive`}},

		// Credentials.
		{name: "password_env not set", setup: setup{file: upstreamFile("    username: alice\n    password_env: HUB_TOKEN\n")}, want: []string{"$FILE: upstreams[0].password_env: HUB_TOKEN is not set"}},
		{name: "password_env empty", setup: setup{file: upstreamFile("    username: alice\n    password_env: HUB_TOKEN\n"), env: map[string]string{"HUB_TOKEN": ""}}, want: []string{"upstreams[0].password_env: HUB_TOKEN is not set"}},
		{name: "password_file missing", setup: setup{file: upstreamFile("    username: alice\n    password_file: $DIR/nope\n")}, want: []string{"upstreams[0].password_file: open ", "/nope: no such file"}},
		{name: "password_file empty", setup: setup{file: upstreamFile("    username: alice\n    password_file: $DIR/pw\n"), files: map[string]string{"pw": "\n"}}, want: []string{"upstreams[0].password_file: ", "/pw is empty"}},
		{name: "password_env and password_file", setup: setup{file: upstreamFile("    username: alice\n    password_env: HUB_TOKEN\n    password_file: $DIR/pw\n"), env: map[string]string{"HUB_TOKEN": "t"}, files: map[string]string{"pw": "p"}}, want: []string{"upstreams[0]: set password_env or password_file, not both"}},
		{name: "password without username", setup: setup{file: upstreamFile("    password_env: HUB_TOKEN\n"), env: map[string]string{"HUB_TOKEN": "t"}}, want: []string{"upstreams[0].username: is required with password_env or password_file"}},
		{name: "username without password", setup: setup{file: upstreamFile("    username: alice\n")}, want: []string{`upstreams[0].username: "alice" needs password_env or password_file`}},

		// A broken file is an error even when flags would replace it.
		{name: "file checked before --upstream", setup: setup{file: "default: nope\n", args: []string{"--upstream", "x=https://x"}}, want: []string{`$FILE: default: "nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.wantError(t, tt.want...)
		})
	}
}

// wantError runs Parse and checks that it fails with one line that
// contains each of want ("$FILE" is the config file) and no password.
func (s setup) wantError(t *testing.T, want ...string) {
	t.Helper()
	cfg, path, err := s.parse(t)
	if err == nil {
		t.Fatalf("Parse succeeded with %+v, want an error", cfg)
	}
	msg := err.Error()
	for _, w := range want {
		if w = strings.ReplaceAll(w, "$FILE", path); !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line", msg)
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error %q shows a password", msg)
	}
}
