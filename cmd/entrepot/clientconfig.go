package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/oci"
	yaml "go.yaml.in/yaml/v3"
)

const clientConfigHelp = `usage: entrepot client-config --url URL [--for CLIENT] [--write DIR]
                              [--config FILE] [--upstream NAME=URL]...
Prints the configuration that makes container clients pull through this
cache, for the upstreams configured as "entrepot serve" reads them.
  --url URL            the cache as clients reach it, http(s)://HOST[:PORT]
                       with no path (required)
  --for CLIENT         docker, containerd, podman, cri-o, k3s or all
                       (default all)
  --write DIR          write the files under DIR, laid out as under /etc,
                       instead of printing them (default: print)
  --config FILE        the server's configuration file (default: none)
  --upstream NAME=URL  as for serve, repeatable (default: the file's
                       upstreams, else the built-in list)
The files, under /etc (or DIR):
  docker/daemon.json                          registry-mirrors: Docker Hub only
  containerd/certs.d/<registry>/hosts.toml    one per upstream (containerd's
                                              registry config_path)
  containers/registries.conf.d/entrepot.conf  podman and CRI-O
  rancher/k3s/registries.yaml                 k3s (RKE2: rancher/rke2/)`

// clientFile is one generated file: its path relative to /etc (or to
// --write DIR), and its content.
type clientFile struct {
	path string
	data []byte
}

// clientKinds are the --for values, each with the generator of its files,
// in the order --for all prints them. podman and cri-o read the same file.
var clientKinds = []struct {
	name  string
	files func(*clientSetup) ([]clientFile, error)
}{
	{"docker", (*clientSetup).dockerFiles},
	{"containerd", (*clientSetup).containerdFiles},
	{"podman", (*clientSetup).containersFiles},
	{"cri-o", (*clientSetup).containersFiles},
	{"k3s", (*clientSetup).k3sFiles},
}

// errNoDockerHub: the default upstream is not Docker Hub, so dockerd,
// which sends only Docker Hub pulls to a mirror and names no upstream in
// them, cannot use this cache.
var errNoDockerHub = errors.New("no Docker Hub default")

// runClientConfig runs `entrepot client-config` and returns the exit code:
// 2 for a wrong command line or configuration, 1 when a file cannot be
// written.
func runClientConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("client-config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cacheURL := fs.String("url", "", "the cache's `URL` as clients reach it")
	kind := fs.String("for", "all", "the `client` to configure")
	dir := fs.String("write", "", "write the files under `DIR`")
	// --config, --upstream and the arguments go to config.Parse as they
	// came, so that the upstreams and every error are serve's own.
	var serveArgs []string
	fs.Func("config", "configuration `file`", func(s string) error {
		serveArgs = append(serveArgs, "--config="+s)
		return nil
	})
	fs.Func("upstream", "upstream as `NAME=URL`, repeatable", func(s string) error {
		serveArgs = append(serveArgs, "--upstream="+s)
		return nil
	})
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(stdout, clientConfigHelp)
				return 0
			}
			fmt.Fprintf(stderr, "entrepot client-config: %v (see entrepot client-config --help)\n", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest, args = append(rest, fs.Arg(0)), fs.Args()[1:]
	}

	files, note, err := clientConfigFiles(*cacheURL, *kind, append(serveArgs, rest...))
	if err != nil {
		fmt.Fprintf(stderr, "entrepot client-config: %v\n", err)
		return 2
	}
	if note != "" {
		fmt.Fprintf(stderr, "entrepot client-config: %s\n", note)
	}
	if *dir == "" {
		for i, f := range files {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			fmt.Fprintf(stdout, "# /etc/%s\n%s", f.path, f.data)
		}
		return 0
	}
	for _, f := range files {
		path := filepath.Join(*dir, filepath.FromSlash(f.path))
		if err := writeFileAtomic(path, f.data); err != nil {
			fmt.Fprintf(stderr, "entrepot client-config: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", path)
	}
	return 0
}

// clientConfigFiles checks the command line and generates the files of
// kind. note, when not empty, says what --for all left out and why.
func clientConfigFiles(rawURL, kind string, serveArgs []string) (files []clientFile, note string, err error) {
	cache, err := parseCacheURL(rawURL)
	if err != nil {
		return nil, "", err
	}
	known := kind == "all"
	for _, k := range clientKinds {
		known = known || k.name == kind
	}
	if !known {
		return nil, "", fmt.Errorf("--for %q: want docker, containerd, podman, cri-o, k3s or all", kind)
	}
	cfg, err := config.Parse(serveArgs, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		// Only the arguments after a configuration file can get here.
		return nil, "", errors.New("-h or --help must come before the configuration file")
	}
	if err != nil {
		return nil, "", err
	}
	s := newClientSetup(cache, cfg)
	done := map[string]bool{} // generated paths: podman and cri-o share theirs
	for _, k := range clientKinds {
		if kind != "all" && kind != k.name {
			continue
		}
		got, err := k.files(s)
		if errors.Is(err, errNoDockerHub) && kind == "all" {
			note = fmt.Sprintf("no daemon.json: the default upstream %q is not Docker Hub, and dockerd sends only Docker Hub pulls to a mirror", cfg.Default)
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("--for %s: %w", k.name, err)
		}
		for _, f := range got {
			if !done[f.path] {
				done[f.path] = true
				files = append(files, f)
			}
		}
	}
	return files, note, nil
}

// parseCacheURL accepts http(s)://HOST[:PORT], with at most a trailing
// slash: Entrepot serves the registry API at /v2/, and dockerd's
// registry-mirrors and podman's mirror locations take no path of their own.
func parseCacheURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("--url is required: the cache as clients reach it, e.g. --url http://cache:5000")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("--url %q is malformed: %v", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("--url %q: want http:// or https://, e.g. http://cache:5000", raw)
	case u.User != nil:
		return nil, fmt.Errorf("--url %q must not contain credentials", u.Redacted())
	case u.Hostname() == "":
		return nil, fmt.Errorf("--url %q has no host", raw)
	case u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("--url %q must have no path: Entrepot serves the registry API at /v2/ of its root", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("--url %q must not have a query or fragment", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("--url %q: the port must be from 1 to 65535", raw)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("--url %q has an empty port", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// clientSetup is what every generator needs: the cache and the upstreams,
// each with the registry name clients write in their image references.
type clientSetup struct {
	cache    *url.URL
	insecure bool // plain http: clients must be told to use it
	ups      []clientUpstream
	dflt     *clientUpstream // the default upstream
}

type clientUpstream struct {
	config.Upstream
	// registry is the registry host in clients' references, which
	// containerd sends as ?ns= and which names its hosts.toml directory:
	// the upstream's name, or docker.io for Docker Hub whatever its name.
	registry string
}

func newClientSetup(cache *url.URL, cfg *config.Config) *clientSetup {
	s := &clientSetup{cache: cache, insecure: cache.Scheme == "http"}
	named := map[string]bool{}
	for _, u := range cfg.Upstreams {
		named[u.Name] = true
	}
	taken := map[string]bool{}
	for _, u := range cfg.Upstreams {
		reg := u.Name
		if isDockerHub(u) && !named[oci.DockerHub] {
			reg = oci.DockerHub
		}
		if taken[reg] {
			continue // a second Docker Hub: clients can name one only
		}
		taken[reg] = true
		s.ups = append(s.ups, clientUpstream{Upstream: u, registry: reg})
	}
	for i := range s.ups {
		if s.ups[i].Name == cfg.Default {
			s.dflt = &s.ups[i]
		}
	}
	return s
}

// isDockerHub matches the upstream package's own test of Docker Hub.
func isDockerHub(u config.Upstream) bool {
	return u.Name == oci.DockerHub || u.URL.Host == "registry-1.docker.io"
}

// byPrefix tells whether clients must address u by its path prefix
// (/v2/<name>/...) rather than by containerd's ?ns=, which Entrepot
// matches to upstream names: when clients know the registry by another
// name than the upstream's.
func (u clientUpstream) byPrefix() bool { return u.registry != u.Name }

// cacheHost is the cache's host[:port], as podman and dockerd's
// insecure-registries write it.
func (s *clientSetup) cacheHost() string { return s.cache.Host }

// dockerFiles: dockerd mirrors Docker Hub only, and asks the mirror for
// /v2/library/nginx/..., with no upstream name: the default upstream must
// be Docker Hub.
func (s *clientSetup) dockerFiles() ([]clientFile, error) {
	if s.dflt == nil || !isDockerHub(s.dflt.Upstream) {
		return nil, fmt.Errorf("%w: the default upstream %q is not Docker Hub, and dockerd sends only Docker Hub pulls to a mirror, naming no upstream; set default: docker.io", errNoDockerHub, s.dfltName())
	}
	daemon := struct {
		RegistryMirrors    []string `json:"registry-mirrors"`
		InsecureRegistries []string `json:"insecure-registries,omitempty"`
	}{RegistryMirrors: []string{s.cache.String()}}
	if s.insecure {
		daemon.InsecureRegistries = []string{s.cacheHost()}
	}
	b, err := json.MarshalIndent(daemon, "", "  ")
	if err != nil {
		return nil, err
	}
	return []clientFile{{"docker/daemon.json", append(b, '\n')}}, nil
}

func (s *clientSetup) dfltName() string {
	if s.dflt == nil {
		return ""
	}
	return s.dflt.Name
}

// containerdFiles writes a hosts.toml per upstream: Entrepot first, for
// pulls and tag resolution, then the upstream itself as the fallback
// server. containerd appends /v2 to the host's URL and ?ns=<registry> to
// every request; an upstream that clients know by another name is
// addressed by its path prefix instead (override_path).
func (s *clientSetup) containerdFiles() ([]clientFile, error) {
	var files []clientFile
	for _, u := range s.ups {
		host, override := s.cache.String(), ""
		if u.byPrefix() {
			host += "/v2/" + u.Name
			override = "  override_path = true\n"
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "# Pulls of %s go through Entrepot, and to the upstream when it fails.\n", u.registry)
		fmt.Fprintf(&b, "server = %s\n\n", tomlString(u.URL.String()))
		fmt.Fprintf(&b, "[host.%s]\n", tomlString(host))
		fmt.Fprintf(&b, "  capabilities = [\"pull\", \"resolve\"]\n%s", override)
		files = append(files, clientFile{"containerd/certs.d/" + u.registry + "/hosts.toml", b.Bytes()})
	}
	return files, nil
}

// containersFiles writes the registries.conf drop-in of podman and CRI-O:
// for each registry, Entrepot's path prefix as a mirror (a path in a
// mirror's location becomes a repository prefix), and the upstream itself
// as the registry's location, tried when the mirror fails.
func (s *clientSetup) containersFiles() ([]clientFile, error) {
	var b bytes.Buffer
	b.WriteString("# Pulls through Entrepot; the registries' own locations are the fallback.\n")
	for _, u := range s.ups {
		location := u.URL.Host
		if location == "registry-1.docker.io" {
			location = oci.DockerHub // as podman users write it
		}
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %s\nlocation = %s\n", tomlString(u.registry), tomlString(location))
		if u.URL.Scheme == "http" {
			b.WriteString("insecure = true\n")
		}
		fmt.Fprintf(&b, "\n[[registry.mirror]]\nlocation = %s\n", tomlString(s.cacheHost()+"/"+u.Name))
		if s.insecure {
			b.WriteString("insecure = true\n")
		}
	}
	return []clientFile{{"containers/registries.conf.d/entrepot.conf", b.Bytes()}}, nil
}

// k3sFiles writes k3s's registries.yaml, from which k3s generates
// containerd's hosts.toml files: an endpoint with no path gets /v2 and
// containerd's ?ns=, one with a path is used as is (override_path), as for
// containerd itself. k3s falls back to each registry's default endpoint on
// its own.
func (s *clientSetup) k3sFiles() ([]clientFile, error) {
	type mirror struct {
		Endpoint []string `yaml:"endpoint"`
	}
	mirrors := map[string]mirror{} // yaml.v3 writes the keys sorted
	for _, u := range s.ups {
		endpoint := s.cache.String()
		if u.byPrefix() {
			endpoint += "/v2/" + u.Name
		}
		mirrors[u.registry] = mirror{Endpoint: []string{endpoint}}
	}
	var b bytes.Buffer
	b.WriteString("# Pulls through Entrepot; k3s falls back to each registry itself.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Mirrors map[string]mirror `yaml:"mirrors"`
	}{mirrors}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []clientFile{{"rancher/k3s/registries.yaml", b.Bytes()}}, nil
}

// tomlString quotes s as a TOML basic string. strconv.Quote is close but
// not the same: TOML has no \x, \a or \v escapes.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so that a client reading its configuration (DIR may be /etc)
// never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
