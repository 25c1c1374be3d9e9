package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
	yaml "go.yaml.in/yaml/v3"
)

// The files as the clients read them: each parsed with a real parser of
// its format.
type (
	daemonJSON struct {
		RegistryMirrors    []string `json:"registry-mirrors"`
		InsecureRegistries []string `json:"insecure-registries"`
	}
	hostsTOML struct {
		Server string `toml:"server"`
		Host   map[string]struct {
			Capabilities []string `toml:"capabilities"`
			OverridePath bool     `toml:"override_path"`
		} `toml:"host"`
	}
	registriesConf struct {
		Registry []struct {
			Prefix   string `toml:"prefix"`
			Location string `toml:"location"`
			Insecure bool   `toml:"insecure"`
			Mirror   []struct {
				Location string `toml:"location"`
				Insecure bool   `toml:"insecure"`
			} `toml:"mirror"`
		} `toml:"registry"`
	}
	registriesYAML struct {
		Mirrors map[string]struct {
			Endpoint []string `yaml:"endpoint"`
		} `yaml:"mirrors"`
	}
)

// clientConfig runs the command and returns its exit code and output.
func clientConfig(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runClientConfig(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeClientConfig runs the command with --write into a fresh directory,
// expects success, and returns the directory.
func writeClientConfig(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	if code, _, stderr := clientConfig(t, append(args, "--write", dir)...); code != 0 {
		t.Fatalf("client-config %q: exit %d, stderr %q", args, code, stderr)
	}
	return dir
}

// wantHost is what a hosts.toml must say for one upstream.
type wantHost struct {
	registry, server, host string
	overridePath           bool
}

// wantMirror is one [[registry]] of registries.conf.
type wantMirror struct {
	prefix, location string
	insecure         bool
	mirror           string
}

func TestClientConfigFiles(t *testing.T) {
	t.Parallel()
	cfgFile := filepath.Join(t.TempDir(), "entrepot.yaml")
	if err := os.WriteFile(cfgFile, []byte(`
default: docker.io
upstreams:
  - name: ghcr.io
    url: https://ghcr.io
  - name: docker.io
    url: https://registry-1.docker.io
  - name: localhost:5001
    url: http://127.0.0.1:5001
`), 0o644); err != nil {
		t.Fatal(err)
	}
	defaults := []string{"docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io", "public.ecr.aws", "mcr.microsoft.com"}
	for _, tc := range []struct {
		name     string
		args     []string
		mirror   string // registry-mirrors, and every containerd host but by-prefix ones
		insecure []string
		hosts    []wantHost
		conf     []wantMirror
		k3s      map[string]string
	}{
		{
			name:     "built-in upstreams, http",
			args:     []string{"--url", "http://cache:5000"},
			mirror:   "http://cache:5000",
			insecure: []string{"cache:5000"},
			hosts: func() (hs []wantHost) {
				for _, r := range defaults {
					server := "https://" + r
					if r == "docker.io" {
						server = "https://registry-1.docker.io"
					}
					hs = append(hs, wantHost{registry: r, server: server, host: "http://cache:5000"})
				}
				return hs
			}(),
			conf: func() (ms []wantMirror) {
				for _, r := range defaults {
					ms = append(ms, wantMirror{prefix: r, location: r, mirror: "cache:5000/" + r})
				}
				return ms
			}(),
			k3s: func() map[string]string {
				m := map[string]string{}
				for _, r := range defaults {
					m[r] = "http://cache:5000"
				}
				return m
			}(),
		},
		{
			name:   "flags, https with a port and a trailing slash",
			args:   []string{"--upstream", "docker.io=https://registry-1.docker.io", "--upstream", "quay.io=https://quay.io", "--url", "https://cache.example:8443/"},
			mirror: "https://cache.example:8443",
			hosts: []wantHost{
				{registry: "docker.io", server: "https://registry-1.docker.io", host: "https://cache.example:8443"},
				{registry: "quay.io", server: "https://quay.io", host: "https://cache.example:8443"},
			},
			conf: []wantMirror{
				{prefix: "docker.io", location: "docker.io", mirror: "cache.example:8443/docker.io"},
				{prefix: "quay.io", location: "quay.io", mirror: "cache.example:8443/quay.io"},
			},
			k3s: map[string]string{"docker.io": "https://cache.example:8443", "quay.io": "https://cache.example:8443"},
		},
		{
			// The file's default, not its first upstream, serves dockerd.
			// An http upstream is an insecure location.
			name:     "configuration file, flags after the URL",
			args:     []string{"--url", "http://10.0.0.5:5000", "--config", cfgFile},
			mirror:   "http://10.0.0.5:5000",
			insecure: []string{"10.0.0.5:5000"},
			hosts: []wantHost{
				{registry: "ghcr.io", server: "https://ghcr.io", host: "http://10.0.0.5:5000"},
				{registry: "docker.io", server: "https://registry-1.docker.io", host: "http://10.0.0.5:5000"},
				{registry: "localhost:5001", server: "http://127.0.0.1:5001", host: "http://10.0.0.5:5000"},
			},
			conf: []wantMirror{
				{prefix: "ghcr.io", location: "ghcr.io", mirror: "10.0.0.5:5000/ghcr.io"},
				{prefix: "docker.io", location: "docker.io", mirror: "10.0.0.5:5000/docker.io"},
				{prefix: "localhost:5001", location: "127.0.0.1:5001", insecure: true, mirror: "10.0.0.5:5000/localhost:5001"},
			},
			k3s: map[string]string{"ghcr.io": "http://10.0.0.5:5000", "docker.io": "http://10.0.0.5:5000", "localhost:5001": "http://10.0.0.5:5000"},
		},
		{
			// The configuration file as the one argument, as serve takes
			// it, before the flags.
			name:     "configuration file as the argument",
			args:     []string{cfgFile, "--url", "http://cache:5000", "--for", "all"},
			mirror:   "http://cache:5000",
			insecure: []string{"cache:5000"},
			hosts: []wantHost{
				{registry: "ghcr.io", server: "https://ghcr.io", host: "http://cache:5000"},
				{registry: "docker.io", server: "https://registry-1.docker.io", host: "http://cache:5000"},
				{registry: "localhost:5001", server: "http://127.0.0.1:5001", host: "http://cache:5000"},
			},
			conf: []wantMirror{
				{prefix: "ghcr.io", location: "ghcr.io", mirror: "cache:5000/ghcr.io"},
				{prefix: "docker.io", location: "docker.io", mirror: "cache:5000/docker.io"},
				{prefix: "localhost:5001", location: "127.0.0.1:5001", insecure: true, mirror: "cache:5000/localhost:5001"},
			},
			k3s: map[string]string{"ghcr.io": "http://cache:5000", "docker.io": "http://cache:5000", "localhost:5001": "http://cache:5000"},
		},
		{
			// docker.io served by another registry (as in the e2e suite):
			// that registry is podman's location, not Docker Hub.
			name:     "docker.io at a local registry",
			args:     []string{"--url", "http://cache:5000", "--upstream", "docker.io=http://127.0.0.1:5002"},
			mirror:   "http://cache:5000",
			insecure: []string{"cache:5000"},
			hosts:    []wantHost{{registry: "docker.io", server: "http://127.0.0.1:5002", host: "http://cache:5000"}},
			conf:     []wantMirror{{prefix: "docker.io", location: "127.0.0.1:5002", insecure: true, mirror: "cache:5000/docker.io"}},
			k3s:      map[string]string{"docker.io": "http://cache:5000"},
		},
		{
			// Docker Hub under another name: clients still say docker.io,
			// which ?ns= would not match, so the path prefix names it.
			name:     "Docker Hub named hub",
			args:     []string{"--url", "http://cache:5000", "--upstream", "hub=https://registry-1.docker.io", "--upstream", "ghcr.io=https://ghcr.io"},
			mirror:   "http://cache:5000",
			insecure: []string{"cache:5000"},
			hosts: []wantHost{
				{registry: "docker.io", server: "https://registry-1.docker.io", host: "http://cache:5000/v2/hub", overridePath: true},
				{registry: "ghcr.io", server: "https://ghcr.io", host: "http://cache:5000"},
			},
			conf: []wantMirror{
				{prefix: "docker.io", location: "docker.io", mirror: "cache:5000/hub"},
				{prefix: "ghcr.io", location: "ghcr.io", mirror: "cache:5000/ghcr.io"},
			},
			k3s: map[string]string{"docker.io": "http://cache:5000/v2/hub", "ghcr.io": "http://cache:5000"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeClientConfig(t, tc.args...)

			var want []string
			want = append(want, "docker/daemon.json")
			for _, h := range tc.hosts {
				want = append(want, "containerd/certs.d/"+h.registry+"/hosts.toml")
			}
			want = append(want, "containers/registries.conf.d/entrepot.conf", "rancher/k3s/registries.yaml")
			slices.Sort(want)
			if got := listFiles(t, dir); !slices.Equal(got, want) {
				t.Errorf("files written:\n got %q\nwant %q", got, want)
			}

			var daemon daemonJSON
			readFile(t, dir, "docker/daemon.json", json.Unmarshal, &daemon)
			if !slices.Equal(daemon.RegistryMirrors, []string{tc.mirror}) || !slices.Equal(daemon.InsecureRegistries, tc.insecure) {
				t.Errorf("daemon.json = %+v, want registry-mirrors [%s], insecure-registries %q", daemon, tc.mirror, tc.insecure)
			}
			raw, _ := os.ReadFile(filepath.Join(dir, "docker/daemon.json"))
			if tc.insecure == nil && strings.Contains(string(raw), "insecure") {
				t.Errorf("daemon.json for an https cache names insecure registries:\n%s", raw)
			}

			for _, h := range tc.hosts {
				var got hostsTOML
				readFile(t, dir, "containerd/certs.d/"+h.registry+"/hosts.toml", toml.Unmarshal, &got)
				if got.Server != h.server {
					t.Errorf("%s hosts.toml: server = %q, want the upstream %q", h.registry, got.Server, h.server)
				}
				host, ok := got.Host[h.host]
				if len(got.Host) != 1 || !ok {
					t.Errorf("%s hosts.toml: hosts %v, want only %q", h.registry, got.Host, h.host)
					continue
				}
				if !slices.Equal(host.Capabilities, []string{"pull", "resolve"}) || host.OverridePath != h.overridePath {
					t.Errorf("%s hosts.toml: host %+v, want capabilities [pull resolve], override_path %v", h.registry, host, h.overridePath)
				}
			}

			var conf registriesConf
			readFile(t, dir, "containers/registries.conf.d/entrepot.conf", toml.Unmarshal, &conf)
			if len(conf.Registry) != len(tc.conf) {
				t.Fatalf("registries.conf: %d registries, want %d: %+v", len(conf.Registry), len(tc.conf), conf)
			}
			for i, w := range tc.conf {
				r := conf.Registry[i]
				if r.Prefix != w.prefix || r.Location != w.location || r.Insecure != w.insecure {
					t.Errorf("registries.conf registry %d = %q at %q (insecure %v), want %q at %q (insecure %v)",
						i, r.Prefix, r.Location, r.Insecure, w.prefix, w.location, w.insecure)
				}
				if len(r.Mirror) != 1 || r.Mirror[0].Location != w.mirror || r.Mirror[0].Insecure != (tc.insecure != nil) {
					t.Errorf("registries.conf %s: mirrors %+v, want one at %q, insecure %v", w.prefix, r.Mirror, w.mirror, tc.insecure != nil)
				}
			}

			var k3s registriesYAML
			readFile(t, dir, "rancher/k3s/registries.yaml", yaml.Unmarshal, &k3s)
			got := map[string]string{}
			for reg, m := range k3s.Mirrors {
				got[reg] = strings.Join(m.Endpoint, " ")
			}
			if !reflect.DeepEqual(got, tc.k3s) {
				t.Errorf("registries.yaml mirrors = %v, want %v", got, tc.k3s)
			}
		})
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func readFile(t *testing.T, dir, path string, unmarshal func([]byte, any) error, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(b, v); err != nil {
		t.Fatalf("%s does not parse: %v\n%s", path, err, b)
	}
}

// Without --write, each file is printed after a comment with its path, and
// --for picks the files.
func TestClientConfigPrint(t *testing.T) {
	t.Parallel()
	ups := []string{"--url", "http://cache:5000", "--upstream", "docker.io=https://registry-1.docker.io", "--upstream", "ghcr.io=https://ghcr.io"}
	for _, tc := range []struct {
		kind  string
		paths []string
	}{
		{"all", []string{"/etc/docker/daemon.json", "/etc/containerd/certs.d/docker.io/hosts.toml", "/etc/containerd/certs.d/ghcr.io/hosts.toml",
			"/etc/containers/registries.conf.d/entrepot.conf", "/etc/rancher/k3s/registries.yaml"}},
		{"docker", []string{"/etc/docker/daemon.json"}},
		{"containerd", []string{"/etc/containerd/certs.d/docker.io/hosts.toml", "/etc/containerd/certs.d/ghcr.io/hosts.toml"}},
		{"podman", []string{"/etc/containers/registries.conf.d/entrepot.conf"}},
		{"cri-o", []string{"/etc/containers/registries.conf.d/entrepot.conf"}},
		{"k3s", []string{"/etc/rancher/k3s/registries.yaml"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := clientConfig(t, append(ups, "--for", tc.kind)...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			var paths []string
			for line := range strings.Lines(stdout) {
				if p, ok := strings.CutPrefix(strings.TrimSpace(line), "# /etc/"); ok {
					paths = append(paths, "/etc/"+p)
				}
			}
			if !slices.Equal(paths, tc.paths) {
				t.Errorf("printed files %q, want %q\n%s", paths, tc.paths, stdout)
			}
			// What is printed is what --write writes.
			dir := writeClientConfig(t, append(ups, "--for", tc.kind)...)
			var want strings.Builder
			for i, p := range tc.paths {
				b, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(p, "/etc/")))
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 {
					want.WriteString("\n")
				}
				want.WriteString("# " + p + "\n" + string(b))
			}
			if stdout != want.String() {
				t.Errorf("printed:\n%s\nwant the written files:\n%s", stdout, want.String())
			}
		})
	}
}

// dockerd mirrors Docker Hub only, into the default upstream: with another
// default, --for docker is an error and --for all leaves daemon.json out.
func TestClientConfigDefaultNotDockerHub(t *testing.T) {
	t.Parallel()
	ups := []string{"--url", "http://cache:5000", "--upstream", "ghcr.io=https://ghcr.io", "--upstream", "docker.io=https://registry-1.docker.io"}
	code, stdout, stderr := clientConfig(t, append(ups, "--for", "docker")...)
	if code != 2 || stdout != "" || !strings.Contains(stderr, `"ghcr.io" is not Docker Hub`) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("--for docker: exit %d, stdout %q, stderr %q; want 2 and one line naming the default", code, stdout, stderr)
	}
	dir := t.TempDir()
	code, _, stderr = clientConfig(t, append(ups, "--write", dir)...)
	if code != 0 || !strings.Contains(stderr, "no daemon.json") {
		t.Errorf("--for all: exit %d, stderr %q; want 0 and a note", code, stderr)
	}
	want := []string{"containerd/certs.d/docker.io/hosts.toml", "containerd/certs.d/ghcr.io/hosts.toml",
		"containers/registries.conf.d/entrepot.conf", "rancher/k3s/registries.yaml"}
	if got := listFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("files written %q, want %q", got, want)
	}
}

func TestClientConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("upstreams: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(dir, "bad-key.yaml")
	if err := os.WriteFile(badKey, []byte("upstreams:\n  - name: ghcr.io\n    url: ftp://ghcr.io\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	url := []string{"--url", "http://cache:5000"}
	for _, tc := range []struct {
		name string
		args []string
		want string // in the one line on stderr
	}{
		{"no --url", nil, "--url is required"},
		{"empty --url", []string{"--url", ""}, "--url is required"},
		{"no scheme", []string{"--url", "cache:5000"}, "want http:// or https://"},
		{"bare host", []string{"--url", "cache"}, "want http:// or https://"},
		{"other scheme", []string{"--url", "ftp://cache:5000"}, "want http:// or https://"},
		{"no host", []string{"--url", "http://"}, "has no host"},
		{"only a port", []string{"--url", "http://:5000"}, "has no host"},
		{"path", []string{"--url", "http://cache:5000/v2/"}, "must have no path"},
		{"query", []string{"--url", "http://cache:5000?ns=docker.io"}, "must not have a query"},
		{"fragment", []string{"--url", "http://cache:5000#x"}, "must not have a query or fragment"},
		{"credentials", []string{"--url", "http://me:secret@cache:5000"}, "must not contain credentials"},
		{"port 0", []string{"--url", "http://cache:0"}, "port must be from 1 to 65535"},
		{"port too big", []string{"--url", "http://cache:65536"}, "port must be from 1 to 65535"},
		{"empty port", []string{"--url", "http://cache:"}, "empty port"},
		{"malformed", []string{"--url", "http://ca che:5000"}, "is malformed"},
		{"unknown --for", append(url, "--for", "nerdctl"), `--for "nerdctl": want docker, containerd`},
		{"unknown flag", append(url, "--listen", ":5000"), "flag provided but not defined: -listen"},
		{"missing file", append(url, "--config", filepath.Join(dir, "absent.yaml")), "absent.yaml"},
		{"broken file", append(url, "--config", broken), "broken.yaml"},
		{"bad key", append(url, "--config", badKey), "upstreams[0].url"},
		{"bad --upstream", append(url, "--upstream", "ghcr.io"), "want NAME=URL"},
		{"duplicate --upstream", append(url, "--upstream", "a.io=https://a.io", "--upstream", "a.io=https://b.io"), "duplicate name"},
		{"two files", append(url, broken, badKey), "one configuration file only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			code, stdout, stderr := clientConfig(t, append(tc.args, "--write", out)...)
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			if !strings.HasPrefix(stderr, "entrepot client-config: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want one line with %q", stderr, tc.want)
			}
			if files := listFiles(t, out); len(files) != 0 {
				t.Errorf("wrote %q on an error", files)
			}
		})
	}
}

func TestClientConfigHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help"} {
		code, stdout, stderr := clientConfig(t, arg)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: entrepot client-config --url URL") {
			t.Errorf("%s: exit %d, stderr %q, stdout %q", arg, code, stderr, stdout)
		}
		for _, flag := range []string{"--url URL", "--for CLIENT", "(default all)", "--write DIR", "--config FILE", "--upstream NAME=URL"} {
			if !strings.Contains(stdout, flag) {
				t.Errorf("%s: help lacks %q", arg, flag)
			}
		}
	}
}

// --write replaces files that are there, and reports a directory it
// cannot write to with exit 1.
func TestClientConfigWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"--url", "https://cache.example", "--upstream", "docker.io=https://registry-1.docker.io", "--for", "docker", "--write", dir}
	path := filepath.Join(dir, "docker", "daemon.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := clientConfig(t, args...)
	if code != 0 || stdout != "wrote "+path+"\n" || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	var daemon daemonJSON
	readFile(t, dir, "docker/daemon.json", json.Unmarshal, &daemon)
	if !slices.Equal(daemon.RegistryMirrors, []string{"https://cache.example"}) || daemon.InsecureRegistries != nil {
		t.Errorf("daemon.json = %+v", daemon)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("daemon.json mode %v (%v), want 0644", fi.Mode(), err)
	}
	if got := listFiles(t, dir); !slices.Equal(got, []string{"docker/daemon.json"}) {
		t.Errorf("files %q: a temporary file was left", got)
	}

	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = clientConfig(t, append(args[:len(args)-1], blocked)...)
	if code != 1 || !strings.Contains(stderr, "not a directory") {
		t.Errorf("--write under a file: exit %d, stderr %q; want 1", code, stderr)
	}
}

// tomlString's output is read back as the same string by a TOML parser.
func TestClientConfigTOMLString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "http://cache:5000", `a"b\c`, "tab\tnew\nline\r\f\b", "\x00\x01\x1f\x7f", "ünï/cødé", "\u2028"} {
		var v struct{ K string }
		doc := "K = " + tomlString(s) + "\n[host." + tomlString(s) + "]\n"
		if err := toml.Unmarshal([]byte(doc), &v); err != nil {
			t.Errorf("%q: %v\n%s", s, err, doc)
			continue
		}
		if v.K != s {
			t.Errorf("%q read back as %q", s, v.K)
		}
	}
}
