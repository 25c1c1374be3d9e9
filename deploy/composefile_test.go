package deploy_test

import (
	"bufio"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

const composeDir = "compose"

// composeFile is the part of docker-compose.yml the test reads. Decoding
// refuses other keys, so that one the test does not know about is noticed
// here rather than ignored.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	// Extensions are the x- keys (the replicas' anchor).
	Extensions map[string]any `yaml:",inline"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	ReadOnly        bool   `yaml:"read_only"`
	StopGracePeriod string `yaml:"stop_grace_period"`
	Restart         string `yaml:"restart"`
}

// composeVars matches compose's interpolations: $$, ${VAR}, ${VAR:?err},
// ${VAR?err}, ${VAR:-default}, ${VAR-default}.
var composeVars = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?])[^}]*)?\}`)

// interpolate does compose's interpolation of s from env.
func interpolate(t *testing.T, s string, env map[string]string) string {
	t.Helper()
	return composeVars.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := composeVars.FindStringSubmatch(m)
		v, set := env[g[1]]
		switch op := g[2]; {
		case strings.HasPrefix(op, ":-") && v == "", strings.HasPrefix(op, "-") && !set:
			return strings.TrimLeft(op, ":-")
		case strings.HasPrefix(op, ":?") && v == "", strings.HasPrefix(op, "?") && !set:
			t.Fatalf("${%s} is required: %s", g[1], strings.TrimLeft(op, ":?"))
		}
		return v
	})
}

// composeVar is the variable a value such as ${S3_ACCESS_KEY:?...} is.
func composeVar(t *testing.T, value string) string {
	t.Helper()
	g := composeVars.FindStringSubmatch(value)
	if g == nil || g[0] != value {
		t.Fatalf("%q is not one ${VARIABLE}", value)
	}
	return g[1]
}

// readDotenv reads a .env file: VAR=value lines, # comments.
func readDotenv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not VAR=value", path, line)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// splitVolume splits a compose volume, SOURCE:TARGET[:MODE].
func splitVolume(v string) (src, dst, mode string) {
	parts := strings.SplitN(v, ":", 3)
	src, dst = parts[0], parts[len(parts)-1]
	if len(parts) == 3 {
		dst, mode = parts[1], parts[2]
	}
	return src, dst, mode
}

// pinned tells whether an image names a version: a tag with a digit, not
// latest.
func pinned(image string) bool {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return false
	}
	tag := image[i+1:]
	return tag != "latest" && strings.ContainsAny(tag, "0123456789")
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

func parseURL(t *testing.T, key, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		t.Fatalf("%s: %q is not a URL with a host (%v)", key, s, err)
	}
	return u
}
