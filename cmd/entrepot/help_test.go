package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/config"
)

// run runs the binary with args and returns its stdout, stderr and exit
// code.
func run(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
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

// collapse joins the words of s by single spaces, so that wrapped lines
// compare as one.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestHelp(t *testing.T) {
	bin := build(t)
	var serveHelp bytes.Buffer
	config.Usage(&serveHelp)

	for _, tc := range []struct {
		name string
		args []string
		want []string // in stdout, spaces collapsed
	}{
		{"top --help", []string{"--help"}, commandNames()},
		{"top -h", []string{"-h"}, commandNames()},
		{"top help", []string{"help"}, commandNames()},
		{"serve --help", []string{"serve", "--help"}, serveFlagLines()},
		{"serve -h after a flag", []string{"serve", "--listen", ":6000", "-h"}, serveFlagLines()},
		{"help serve", []string{"help", "serve"}, serveFlagLines()},
		{"ls --help", []string{"ls", "--help"}, []string{"usage: entrepot ls", "--admin URL", "(default " + defaultAdmin + ")", "--json", "(default false)", "ENTREPOT_ADMIN_TOKEN"}},
		{"help ls", []string{"help", "ls"}, []string{"usage: entrepot ls", "--json"}},
		{"warm --help", []string{"warm", "--help"}, []string{"usage: entrepot warm", "--admin URL", "--platform OS/ARCH", "(default: all of them)", "ENTREPOT_ADMIN_TOKEN"}},
		{"freeze --help", []string{"freeze", "--help"}, []string{"usage: entrepot freeze", "--admin URL", "ENTREPOT_ADMIN_TOKEN"}},
		{"unfreeze -h", []string{"unfreeze", "-h"}, []string{"usage: entrepot unfreeze", "--admin URL"}},
		{"purge --help", []string{"purge", "--help"}, []string{"usage: entrepot purge", "--admin URL"}},
		{"help version", []string{"help", "version"}, []string{"usage: entrepot version"}},
		{"version", []string{"version"}, []string{"entrepot "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := run(t, bin, tc.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(collapse(stdout), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if tc.args[0] == "serve" || tc.args[0] == "help" && len(tc.args) > 1 && tc.args[1] == "serve" {
				if stdout != serveHelp.String() {
					t.Errorf("stdout is not config.Usage:\n%s", stdout)
				}
			}
		})
	}
}

// commandNames are what the top-level help must list.
func commandNames() []string {
	var names []string
	for _, c := range commands {
		names = append(names, " "+c.name+" ")
	}
	return names
}

// serveFlagLines are the starts and ends of every serve flag's line: the
// flag with its argument, and its key.
func serveFlagLines() []string {
	want := []string{"usage: entrepot serve [CONFIG.yaml] [flags]", "ENTREPOT_LOG_LEVEL"}
	for _, f := range config.ServeFlags() {
		want = append(want, collapse("--"+f.Name+" "+f.Arg+" "))
		if f.Key != "" {
			want = append(want, "default "+f.Default+"; key: "+f.Key+")")
		}
	}
	return want
}

func TestHelpErrors(t *testing.T) {
	bin := build(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // in the first line of stderr
		// lines is how many lines stderr has; 0 for any number.
		lines int
	}{
		{"serve --nope", []string{"serve", "--nope"}, "nope", 1},
		{"serve --prefetch x", []string{"serve", "--prefetch", "x"}, "prefetch", 1},
		{"help nope", []string{"help", "nope"}, `unknown command "nope"`, 0},
		{"help two", []string{"help", "ls", "warm"}, "one command", 1},
		{"unknown command", []string{"nope"}, `unknown command "nope"`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := run(t, bin, tc.args...)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != 2 || stdout != "" || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout, and %q", code, stdout, stderr, tc.want)
			}
			if tc.lines > 0 && len(lines) != tc.lines {
				t.Errorf("stderr has %d lines, want %d: %q", len(lines), tc.lines, stderr)
			}
		})
	}
}
