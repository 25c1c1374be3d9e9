package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/entrepot/entrepot/internal/config"
)

// commands are the top-level help's list, one line each.
var commands = []struct{ name, summary string }{
	{"serve", "run the pull-through cache"},
	{"client-config", "print client configuration (docker, containerd, podman, cri-o, k3s)"},
	{"check", "validate the configuration and check each upstream"},
	{"webhook", "serve the Kubernetes admission webhook that rewrites pods' images to the cache"},
	{"rewrite", "rewrite images, Kubernetes YAML or a Dockerfile to the cache"},
	{"ls", "list what the cache holds"},
	{"warm", "fetch images ahead of their pulls"},
	{"freeze", "keep a tag on the digest it has now"},
	{"unfreeze", "let a frozen tag follow its upstream again"},
	{"purge", "drop what the cache holds of an image, a tag or a repository"},
	{"version", "print the version"},
	{"help", "print this help, or a command's: entrepot help COMMAND"},
}

// usage is the top-level help: `entrepot --help`, and what a wrong
// command line gets on stderr.
var usage = func() string {
	var b strings.Builder
	b.WriteString("usage: entrepot COMMAND [ARGS]\n\nEntrepot is a pull-through cache for container registries.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-13s  %s\n", c.name, c.summary)
	}
	b.WriteString(`
ls, warm, freeze, unfreeze and purge talk to a running server's admin API
(--admin URL, default ` + defaultAdmin + `; token: ENTREPOT_ADMIN_TOKEN).
Run "entrepot COMMAND --help" or "entrepot help COMMAND" for its flags.`)
	return b.String()
}()

// commandHelp is each command's --help, but serve's (config.Usage) and
// those of the commands that print their own.
var commandHelp = map[string]string{
	"ls": adminHelp("ls [--json] [REPOSITORY|PATTERN]", `
Lists the cached repositories, tags with digests, sizes, when last pulled,
and which are pinned or frozen. REPOSITORY is normalised as docker does
(nginx is docker.io/library/nginx); a PATTERN may hold *.`,
		flagLine{"--json", "print JSON rather than a table (default false)"}),
	"warm": adminHelp("warm [--platform OS/ARCH]... IMAGE...", `
Fetches images through the running cache, so that their first pull is
local: tags are revalidated, and only what the cache does not hold is
downloaded. A tag may be a pattern (docker.io/library/nginx:1.27.*).`,
		flagLine{"--platform OS/ARCH", "a platform to fetch of an index, as os/arch[/variant];\nrepeatable (default: all of them)"}),
	"freeze": adminHelp("freeze IMAGE:TAG", `
Keeps TAG on the digest it has now (fetched first if needed): every pull
gets that digest, with no upstream request, until "entrepot unfreeze".`),
	"unfreeze": adminHelp("unfreeze IMAGE:TAG", `
Lets a frozen tag follow its upstream again; the next pull revalidates it.`),
	"purge": adminHelp("purge IMAGE[:TAG|@DIGEST] | REPOSITORY", `
Drops what the cache holds of an image, a tag, a manifest or a whole
repository: its tags, manifests, and the blobs nothing else needs. The next
pull fetches afresh.`),
	"webhook": webhookUsage,
	"rewrite": rewriteUsage,
	"version": `usage: entrepot version

Prints the version of this build.`,
	"help": `usage: entrepot help [COMMAND]

Prints the list of commands, or a command's help, as "entrepot COMMAND
--help" does.`,
}

// flagLine is one flag in a command's help. Lines of text after the first
// are indented under the first.
type flagLine struct{ term, text string }

// adminHelp is the help of a command that talks to the admin API: its
// synopsis, what it does, and its flags, --admin first.
func adminHelp(synopsis, about string, own ...flagLine) string {
	lines := append([]flagLine{{"--admin URL", "the server's admin API (default " + defaultAdmin + ")"}}, own...)
	col := 0
	for _, l := range lines {
		col = max(col, len(l.term))
	}
	var b strings.Builder
	name, args, _ := strings.Cut(synopsis, " ")
	fmt.Fprintf(&b, "usage: entrepot %s [--admin URL] %s\n%s\n\nFlags (before or after the arguments):\n", name, args, about)
	for _, l := range lines {
		text := strings.ReplaceAll(l.text, "\n", "\n"+strings.Repeat(" ", col+4))
		fmt.Fprintf(&b, "  %-*s  %s\n", col, l.term, text)
	}
	b.WriteString(`
Environment:
  ENTREPOT_ADMIN_TOKEN  the bearer token, when the admin API requires one`)
	return b.String()
}

// runHelp runs `entrepot help [COMMAND]` and returns the exit code.
func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stdout, usage)
		return 0
	}
	name := args[0]
	if len(args) > 1 {
		fmt.Fprintf(stderr, "entrepot help: one command at a time, not %q\n", strings.Join(args, " "))
		return 2
	}
	if name == "serve" {
		config.Usage(stdout)
		return 0
	}
	if h, ok := commandHelp[name]; ok {
		fmt.Fprintln(stdout, h)
		return 0
	}
	for _, c := range commands {
		if c.name == name {
			// A command that prints its own help, from its flags.
			fmt.Fprintf(stdout, "Run \"entrepot %s --help\" for its help.\n", name)
			return 0
		}
	}
	fmt.Fprintf(stderr, "entrepot help: unknown command %q\n%s\n", name, usage)
	return 2
}
