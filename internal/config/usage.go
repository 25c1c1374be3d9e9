package config

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ServeFlag is one flag of `entrepot serve` as its help describes it.
type ServeFlag struct {
	Name    string // without dashes: "listen"
	Arg     string // the argument's name: "ADDR"; empty for a bool flag
	Usage   string // what the flag does
	Default string // the built-in value, from Defaults
	Key     string // the configuration key the flag overrides; empty for --config
}

// flagDoc is what the help says of a flag beyond its usage string.
type flagDoc struct{ key, def string }

// flagDocs maps each of serve's flags to the key it overrides and its
// default, taken from d (Defaults()) so that the help cannot drift from
// the built-in values. A flag missing here fails usage_test.go.
func flagDocs(d *Config) map[string]flagDoc {
	names := make([]string, len(d.Upstreams))
	for i, u := range d.Upstreams {
		names[i] = u.Name
	}
	maxSize := "0"
	if d.Storage.MaxSize > 0 {
		maxSize = FormatSize(d.Storage.MaxSize)
	}
	return map[string]flagDoc{
		"config":            {"", "none"},
		"listen":            {"listen", d.Listen},
		"data":              {"data", d.Data},
		"prefetch":          {"prefetch", strconv.Itoa(d.Prefetch)},
		"upstream":          {"upstreams", strings.Join(names, ", ")},
		"max-size":          {"storage.max_size", maxSize},
		"admin-listen":      {"admin.listen", d.Admin.Listen},
		"log-format":        {"log.format", d.Log.Format},
		"log-level":         {"log.level", strings.ToLower(d.Log.Level.String())},
		"tls-cert":          {"tls.cert", "none: plain HTTP"},
		"tls-key":           {"tls.key", "none"},
		"cluster-advertise": {"cluster.advertise", "none"},
	}
}

// ServeFlags lists every flag of `entrepot serve`, sorted by name, read
// from the FlagSet that Parse uses: a new flag shows up here, and in
// Usage, by being defined.
func ServeFlags() []ServeFlag {
	docs := flagDocs(Defaults())
	var out []ServeFlag
	(&flags{}).flagSet().VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		doc := docs[f.Name]
		out = append(out, ServeFlag{Name: f.Name, Arg: arg, Usage: usage, Default: doc.def, Key: doc.key})
	})
	return out
}

// helpWidth is the width the flag lines are wrapped to.
const helpWidth = 80

// Usage writes the help of `entrepot serve` to w.
func Usage(w io.Writer) {
	fmt.Fprint(w, `usage: entrepot serve [CONFIG.yaml] [flags]

Runs the pull-through cache: the registry API on --listen, the admin API on
--admin-listen, the store in --data. A setting comes from its flag if given,
else from the YAML configuration file (CONFIG.yaml, or --config FILE), else
from the built-in defaults; each flag below names the key it overrides.

Flags:
`)
	sf := ServeFlags()
	terms := make([]string, len(sf))
	col := 0
	for i, f := range sf {
		terms[i] = "--" + f.Name
		if f.Arg != "" {
			terms[i] += " " + f.Arg
		}
		col = max(col, len(terms[i]))
	}
	for i, f := range sf {
		extra := "default " + f.Default
		if f.Key != "" {
			extra += "; key: " + f.Key
		}
		term := fmt.Sprintf("  %-*s  ", col, terms[i])
		fmt.Fprintln(w, wrap(term, f.Usage, "("+extra+")", helpWidth))
	}
	fmt.Fprint(w, `
Environment:
  ENTREPOT_LOG_LEVEL  sets log.level over the file; --log-level overrides it

The README lists every configuration key, with its default and meaning
(section Configuration).
`)
}

// wrap returns text after prefix, broken at spaces into lines of at most
// width, the lines after the first indented as deep as prefix. A word
// longer than a line stays whole. tail is kept on one line when it fits
// on one: it starts a new line rather than break.
func wrap(prefix, text, tail string, width int) string {
	var b strings.Builder
	b.WriteString(prefix)
	indent, n := strings.Repeat(" ", len(prefix)), len(prefix)
	newline := func() {
		b.WriteString("\n" + indent)
		n = len(indent)
	}
	add := func(words []string) {
		for _, word := range words {
			switch {
			case n == len(indent):
			case n+1+len(word) > width:
				newline()
			default:
				b.WriteByte(' ')
				n++
			}
			b.WriteString(word)
			n += len(word)
		}
	}
	add(strings.Fields(text))
	if n > len(indent) && n+1+len(tail) > width && len(indent)+len(tail) <= width {
		newline()
	}
	add(strings.Fields(tail))
	return b.String()
}
