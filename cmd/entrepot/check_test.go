package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

const checkPassword = "check-s3cret"

// hubLike is a registry in front of go-containerregistry's, as Docker
// Hub answers: a bearer challenge to every request without the token, a
// token realm that checks alice's password when one is sent, and the
// rate-limit headers on manifest HEADs. It records the method of every
// manifest request.
type hubLike struct {
	*httptest.Server
	mu        sync.Mutex // protects manifests
	manifests []string
}

func newHubLike(t *testing.T) *hubLike {
	h := &hubLike{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	put := httptest.NewRequest(http.MethodPut, "/v2/library/alpine/manifests/latest", strings.NewReader(
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`))
	put.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	rec := httptest.NewRecorder()
	reg.ServeHTTP(rec, put)
	if rec.Code != http.StatusCreated {
		t.Fatalf("seeding: %d %s", rec.Code, rec.Body)
	}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); ok && (u != "alice" || p != checkPassword) {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}`)
				return
			}
			io.WriteString(w, `{"token":"tok-good","expires_in":300}`)
			return
		}
		if strings.Contains(r.URL.Path, "/manifests/") {
			h.mu.Lock()
			h.manifests = append(h.manifests, r.Method)
			h.mu.Unlock()
		}
		if r.Header.Get("Authorization") != "Bearer tok-good" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Ratelimit-Limit", "100;w=21600")
			w.Header().Set("Ratelimit-Remaining", "76;w=21600")
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hubLike) manifestMethods() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.manifests)
}

// tlsRegistry is an https registry and a file of its certificate, for
// SSL_CERT_FILE.
func tlsRegistry(t *testing.T) (*httptest.Server, string) {
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, certFile
}

// runWithEnv runs the binary with args and env added to the test's.
func runWithEnv(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// tableRows splits the table into rows of cells, by the two spaces or
// more that tabwriter puts between columns, keyed by the first cell.
func tableRows(t *testing.T, out string) (header []string, rows map[string][]string) {
	t.Helper()
	sep := regexp.MustCompile(`\s{2,}`)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header = sep.Split(lines[0], -1)
	rows = map[string][]string{}
	for _, l := range lines[1:] {
		cells := sep.Split(strings.TrimRight(l, " "), -1)
		if len(cells) != len(header) {
			t.Fatalf("row %q has %d cells, want %d:\n%s", l, len(cells), len(header), out)
		}
		rows[cells[0]] = cells
	}
	return header, rows
}

// entrepot check reads the configuration file as serve does (credentials
// from password_env included), probes every upstream, and prints one row
// each; one unreachable upstream makes the exit status 1 and is named.
func TestCheck(t *testing.T) {
	bin := build(t)
	hub := newHubLike(t)
	secure, certFile := tlsRegistry(t)
	broken := "http://" + freeAddr(t) // nobody listens there
	file := filepath.Join(t.TempDir(), "entrepot.yaml")
	if err := os.WriteFile(file, fmt.Appendf(nil, `upstreams:
  - name: docker.io
    url: %s
    username: alice
    password_env: CHECK_PW
  - name: secure.test
    url: %s
`, hub.URL, secure.URL), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"CHECK_PW=" + checkPassword, "SSL_CERT_FILE=" + certFile}
	expires := secure.Certificate().NotAfter.UTC().Format("2006-01-02")

	t.Run("healthy", func(t *testing.T) {
		stdout, stderr, code := runWithEnv(t, bin, env, "check", "--timeout", "5s", file)
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q; want 0 and nothing\n%s", code, stderr, stdout)
		}
		header, rows := tableRows(t, stdout)
		if want := []string{"UPSTREAM", "URL", "STATUS", "TLS", "AUTH", "BUDGET", "DETAIL"}; !slices.Equal(header, want) {
			t.Errorf("header %q, want %q", header, want)
		}
		for name, want := range map[string][]string{
			"docker.io":   {"docker.io", hub.URL, "ok", "plain http", "token", "76/100 per 6h", "-"},
			"secure.test": {"secure.test", secure.URL, "ok", "TLS1.3, expires " + expires, "anonymous", "-", "-"},
		} {
			if got := rows[name]; !slices.Equal(got, want) {
				t.Errorf("row %q, want %q", got, want)
			}
		}
		if len(rows) != 2 {
			t.Errorf("%d rows, want 2:\n%s", len(rows), stdout)
		}
		// The budget was read with HEADs only: they cost nothing.
		if m := hub.manifestMethods(); len(m) == 0 || slices.Contains(m, http.MethodGet) {
			t.Errorf("manifest requests %q, want HEADs only", m)
		}
	})

	t.Run("one upstream unreachable", func(t *testing.T) {
		stdout, stderr, code := runWithEnv(t, bin, env, "check", "--timeout", "5s",
			"--upstream", "docker.io="+hub.URL, "--upstream", "broken.test="+broken)
		if code != 1 || stderr != "entrepot check: unusable: broken.test\n" {
			t.Fatalf("exit %d, stderr %q; want 1 naming broken.test\n%s", code, stderr, stdout)
		}
		_, rows := tableRows(t, stdout)
		if got := rows["docker.io"]; len(got) < 5 || got[2] != "ok" || got[4] != "anonymous" {
			t.Errorf("docker.io row %q, want ok, anonymous", got)
		}
		want := []string{"broken.test", broken, "unreachable", "plain http", "-", "-", "dial tcp " + strings.TrimPrefix(broken, "http://") + ": connect: connection refused"}
		if got := rows["broken.test"]; !slices.Equal(got, want) {
			t.Errorf("broken.test row %q, want %q", got, want)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		stdout, stderr, code := runWithEnv(t, bin, []string{"CHECK_PW=wrong-pw", "SSL_CERT_FILE=" + certFile}, "check", "--timeout", "5s", file)
		if code != 1 || !strings.Contains(stderr, "unusable: docker.io\n") {
			t.Fatalf("exit %d, stderr %q; want 1 naming docker.io\n%s", code, stderr, stdout)
		}
		_, rows := tableRows(t, stdout)
		if got := rows["docker.io"]; got[2] != "auth-failed" || got[4] != "failed" || !strings.Contains(got[6], "incorrect username or password") {
			t.Errorf("docker.io row %q, want auth-failed saying why", got)
		}
		if got := rows["secure.test"]; got[2] != "ok" {
			t.Errorf("secure.test row %q, want ok", got)
		}
		if strings.Contains(stdout+stderr, "wrong-pw") || strings.Contains(stdout+stderr, checkPassword) {
			t.Errorf("a password in the output:\n%s%s", stdout, stderr)
		}
	})

	t.Run("json", func(t *testing.T) {
		// Without SSL_CERT_FILE the test certificate is unknown.
		stdout, _, code := runWithEnv(t, bin, []string{"CHECK_PW=" + checkPassword}, "check", "--json", "--config", file)
		if code != 1 {
			t.Fatalf("exit %d, want 1 for the unverified certificate\n%s", code, stdout)
		}
		var got []upstreamCheck
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%v:\n%s", err, stdout)
		}
		if len(got) != 2 {
			t.Fatalf("%d upstreams, want 2:\n%s", len(got), stdout)
		}
		hubRow, tlsRow := got[0], got[1]
		if hubRow.Upstream != "docker.io" || hubRow.Status != "ok" || hubRow.Auth != "token" ||
			hubRow.Budget == nil || *hubRow.Budget != (checkQuota{Limit: 100, Remaining: 76, WindowSeconds: 21600}) {
			t.Errorf("docker.io: %+v", hubRow)
		}
		if tlsRow.Upstream != "secure.test" || tlsRow.Status != "tls-error" || !strings.Contains(tlsRow.Detail, "certificate signed by unknown authority") {
			t.Errorf("secure.test: %+v", tlsRow)
		}
	})
}

// A configuration serve refuses, check refuses with exit 2 and the same
// message.
func TestCheckBadConfiguration(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badFile, []byte("upstreams:\n  - name: Docker.IO\n    url: https://registry-1.docker.io\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknownKey := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("listn: :5000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // in the message
	}{
		{"bad listen", []string{"--listen", "nope"}, "--listen"},
		{"bad upstream URL", []string{"--upstream", "x=ftp://host"}, "ftp://host"},
		{"upstream without URL", []string{"--upstream", "docker.io"}, "--upstream"},
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"flag without value", []string{"--config"}, "-config"},
		{"bad name in the file", []string{badFile}, "upstreams[0].name"},
		{"unknown key", []string{"--config", unknownKey}, "listn"},
		{"missing file", []string{filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"two files", []string{badFile, unknownKey}, "one configuration file only"},
		{"password variable unset", []string{writeFile(t, dir, "pw.yaml", "upstreams:\n  - name: docker.io\n    url: https://registry-1.docker.io\n    username: alice\n    password_env: CHECK_UNSET_PW\n")}, "CHECK_UNSET_PW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, serveErr, serveCode := run(t, bin, append([]string{"serve", "--data", filepath.Join(dir, "data")}, tc.args...)...)
			stdout, checkErr, code := run(t, bin, append([]string{"check", "--data", filepath.Join(dir, "data")}, tc.args...)...)
			if serveCode != 2 {
				t.Fatalf("serve: exit %d, stderr %q; the case is not a bad configuration", serveCode, serveErr)
			}
			if code != 2 || stdout != "" {
				t.Errorf("check: exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			msg, ok := strings.CutPrefix(checkErr, "entrepot check: ")
			if want := strings.TrimPrefix(serveErr, "entrepot: "); !ok || msg != want {
				t.Errorf("check says %q, want serve's %q", checkErr, want)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("message %q does not name %q", msg, tc.want)
			}
		})
	}

	_, stderr, code := run(t, bin, "check", "--timeout", "0s", "--upstream", "x=http://127.0.0.1:1")
	if code != 2 || !strings.Contains(stderr, "--timeout") {
		t.Errorf("--timeout 0s: exit %d, stderr %q; want 2 naming --timeout", code, stderr)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckHelp(t *testing.T) {
	bin := build(t)
	for _, args := range [][]string{{"check", "--help"}, {"check", "--upstream", "x=http://127.0.0.1:1", "-h"}} {
		stdout, stderr, code := run(t, bin, args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: entrepot check ") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, stderr, stdout)
		}
		for _, want := range []string{"--timeout DURATION", "(default 10s)", "--json", "--config FILE", "rate-limited is only a warning", "Exit status"} {
			if !strings.Contains(collapse(stdout), want) {
				t.Errorf("%v: help lacks %q", args, want)
			}
		}
	}
}
