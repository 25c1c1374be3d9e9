package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/config"
)

// dockerfile is what the examples rely on in the final stage of
// deploy/Dockerfile.
type dockerfile struct {
	// entrypoint is the ENTRYPOINT's exec form: the binary, "serve" and
	// the configuration file.
	entrypoint []string
	user       string
	expose     []string
	// copies maps each COPY's destination to its source, for COPYs from
	// the build context (no --from).
	copies map[string]string
	// owners maps each COPY --chown's destination to its owner.
	owners map[string]string
	// files are every COPY's destinations, whatever their source.
	files map[string]bool
	// build is every RUN of the stages before the last, joined.
	build string
}

// configPath is the configuration file the image's ENTRYPOINT serves.
func (d dockerfile) configPath() string { return d.entrypoint[len(d.entrypoint)-1] }

// readDockerfile parses deploy/Dockerfile: its instructions, with
// continuation lines joined and comments left out.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	d := dockerfile{copies: map[string]string{}, owners: map[string]string{}, files: map[string]bool{}}
	var runs []string
	for _, line := range lines {
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM": // a new stage: what came before was the build's
			d.build += strings.Join(runs, "\n")
			runs = nil
			d.entrypoint, d.user, d.expose = nil, "", nil
			d.copies, d.owners, d.files = map[string]string{}, map[string]string{}, map[string]bool{}
		case "RUN":
			runs = append(runs, rest)
		case "USER":
			d.user = rest
		case "EXPOSE":
			d.expose = strings.Fields(rest)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT %s is not the exec form: %v", rest, err)
			}
		case "COPY":
			var from bool
			var paths []string
			owner := ""
			for _, f := range strings.Fields(rest) {
				switch {
				case strings.HasPrefix(f, "--from="):
					from = true
				case strings.HasPrefix(f, "--chown="):
					owner = strings.TrimPrefix(f, "--chown=")
				default:
					paths = append(paths, f)
				}
			}
			if len(paths) == 2 && !from {
				d.copies[paths[1]] = paths[0]
			}
			if len(paths) == 2 {
				d.files[paths[1]] = true
			}
			if len(paths) == 2 && owner != "" {
				d.owners[paths[1]] = owner
			}
		}
	}
	if len(d.entrypoint) != 3 || d.entrypoint[1] != "serve" {
		t.Fatalf("Dockerfile: ENTRYPOINT %q, want [BINARY serve CONFIG]", d.entrypoint)
	}
	return d
}

// nonRootUser tells whether a Dockerfile USER or a uid runs unprivileged:
// a uid other than 0 (a name could map to root; the examples use uids).
func nonRootUser(user string) bool {
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	return err == nil && n != 0
}

// parseServe runs the real configuration loader on the arguments of
// `entrepot serve` (the image's ENTRYPOINT after "serve", then the
// example's own), with the configuration file at path in place of the
// one the image names, and env as the environment.
func parseServe(t *testing.T, d dockerfile, path string, args []string, env map[string]string) *config.Config {
	t.Helper()
	argv := slices.Clone(d.entrypoint[2:])
	argv[len(argv)-1] = path
	argv = append(argv, args...)
	cfg, err := config.Parse(argv, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("entrepot serve %s: %v", strings.Join(argv, " "), err)
	}
	return cfg
}

// The image builds a static binary, runs it unprivileged on the ports the
// examples use, and ships a default configuration that loads.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/entrepot"} {
		if !strings.Contains(d.build, want) {
			t.Errorf("Dockerfile: the build stage does not run %q", want)
		}
	}
	if !nonRootUser(d.user) {
		t.Errorf("Dockerfile: USER %q, want a uid other than 0", d.user)
	}
	if !slices.Equal(d.expose, []string{"5000", "5001"}) {
		t.Errorf("Dockerfile: EXPOSE %q, want 5000 5001", d.expose)
	}
	src, ok := d.copies[d.configPath()]
	if !ok {
		t.Fatalf("Dockerfile: no COPY of a default configuration to %s, which the ENTRYPOINT serves", d.configPath())
	}
	cfg := parseServe(t, d, filepath.Join("..", src), nil, nil)
	if cfg.Listen != ":5000" {
		t.Errorf("%s: listen %q, want :5000 (EXPOSE)", src, cfg.Listen)
	}
	if cfg.Data != "/var/lib/entrepot" {
		t.Errorf("%s: data %q, want /var/lib/entrepot", src, cfg.Data)
	}
	if owner := d.owners[cfg.Data]; owner != d.user {
		t.Errorf("Dockerfile: the data directory %s is owned by %q, want USER %q", cfg.Data, owner, d.user)
	}
}

// lookup is the string at path in a YAML document decoded as plain maps,
// failing the test if there is none.
func lookup(t *testing.T, doc map[string]any, path ...string) string {
	t.Helper()
	v, ok := find(doc, path...)
	s, isString := v.(string)
	if !ok || !isString {
		t.Fatalf("%s: %v, want a string", strings.Join(path, "."), v)
	}
	return s
}

// has tells whether doc has a value at path.
func has(doc map[string]any, path ...string) bool {
	_, ok := find(doc, path...)
	return ok
}

func find(doc map[string]any, path ...string) (any, bool) {
	var v any = doc
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// prefixes parses CIDRs.
func prefixes(cidrs ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cidrs {
		out = append(out, netip.MustParsePrefix(c))
	}
	return out
}

// port is the port of a listen address such as :5000.
func port(t *testing.T, key, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	var n int
	if err == nil {
		_, err = fmt.Sscan(p, &n)
	}
	if err != nil {
		t.Fatalf("%s %q: %v", key, addr, err)
	}
	return n
}
