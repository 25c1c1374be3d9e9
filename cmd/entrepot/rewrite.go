package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/rewrite"
)

const rewriteUsage = `usage: entrepot rewrite --cache HOST[:PORT][/PATH] [--config FILE] IMAGE...
       entrepot rewrite --cache HOST[:PORT][/PATH] [--config FILE] [--format yaml|dockerfile] -f FILE|-

Prints each IMAGE as it is on the cache (one per line), or FILE with its
images rewritten: Kubernetes YAML (Pods, every workload's pod template,
Lists, several documents) or a Dockerfile's FROM and COPY --from= images.
Only images of the cache's upstreams are rewritten (the configuration's
upstreams, default the built-in list), but those that match one of the
--exclude patterns (comma-separated, e.g. docker.io/library/busybox*);
everything else stays byte for byte. The changes are listed on stderr.`

// runRewrite is `entrepot rewrite`.
func runRewrite(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rewrite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cache := fs.String("cache", "", "")
	conf := fs.String("config", "", "")
	file := fs.String("f", "", "")
	format := fs.String("format", "", "")
	exclude := fs.String("exclude", "", "")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, rewriteUsage)
		return 0
	}
	failf := func(code int, f string, a ...any) int {
		fmt.Fprintf(stderr, "entrepot rewrite: "+f+"\n", a...)
		return code
	}
	switch {
	case err != nil:
		return failf(2, "%v\n%s", err, rewriteUsage)
	case *cache == "":
		return failf(2, "--cache is required\n%s", rewriteUsage)
	case (*file == "") == (fs.NArg() == 0):
		return failf(2, "give images or -f FILE, one of the two\n%s", rewriteUsage)
	}
	ups := config.Defaults().Upstreams
	if *conf != "" {
		if ups, err = config.ReadUpstreams(*conf); err != nil {
			return failf(2, "%v", err)
		}
	}
	var patterns []string
	if *exclude != "" {
		patterns = strings.Split(*exclude, ",")
	}
	rw, err := rewrite.New(*cache, config.RewriteUpstreams(ups), patterns)
	if err != nil {
		return failf(2, "%v", err)
	}
	if *file == "" {
		for _, image := range fs.Args() {
			to, _ := rw.Image(image)
			fmt.Fprintln(stdout, to)
		}
		return 0
	}
	var src []byte
	if *file == "-" {
		src, err = io.ReadAll(stdin)
	} else {
		src, err = os.ReadFile(*file)
	}
	if err != nil {
		return failf(1, "%v", err)
	}
	kind := *format
	if kind == "" {
		kind = fileFormat(*file, src)
	}
	var out []byte
	var changes []rewrite.Change
	switch kind {
	case "dockerfile":
		out, changes, err = rw.Dockerfile(src)
	case "yaml":
		out, changes, err = rw.Manifests(src)
	default:
		return failf(2, "--format %q: want yaml or dockerfile", kind)
	}
	if err != nil {
		return failf(1, "%s: %v", *file, err)
	}
	_, _ = stdout.Write(out)
	for _, c := range changes {
		fmt.Fprintf(stderr, "%s:%d: %s -> %s\n", *file, c.Line, c.From, c.To)
	}
	return 0
}

// fileFormat tells a Dockerfile from Kubernetes YAML: by its name
// (Dockerfile, Containerfile, *.Dockerfile; .yaml, .yml, .json), else by
// its first instruction.
func fileFormat(name string, src []byte) string {
	base := strings.ToLower(filepath.Base(name))
	switch {
	case strings.Contains(base, "dockerfile") || strings.Contains(base, "containerfile"):
		return "dockerfile"
	case strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml") || strings.HasSuffix(base, ".json"):
		return "yaml"
	}
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if word, _, _ := strings.Cut(line, " "); strings.EqualFold(word, "FROM") || strings.EqualFold(word, "ARG") {
			return "dockerfile"
		}
		break
	}
	return "yaml"
}
