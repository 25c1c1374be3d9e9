package config

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// Every flag of serve has its argument's name, its default and, but for
// --config, its key; and flagDocs documents no flag that does not exist.
func TestServeFlagsAreDocumented(t *testing.T) {
	fs := (&flags{}).flagSet()
	docs := flagDocs(Defaults())
	for name := range docs {
		if fs.Lookup(name) == nil {
			t.Errorf("flagDocs documents --%s, which serve does not define", name)
		}
	}
	for _, f := range ServeFlags() {
		switch {
		case f.Default == "":
			t.Errorf("--%s has no default in flagDocs", f.Name)
		case f.Key == "" && f.Name != "config":
			t.Errorf("--%s has no configuration key in flagDocs", f.Name)
		}
		// A Func flag whose usage has no `NAME` is shown as "value".
		if _, isBool := fs.Lookup(f.Name).Value.(interface{ IsBoolFlag() bool }); !isBool && (f.Arg == "" || f.Arg == "value") {
			t.Errorf("--%s: the usage string names no argument in backquotes (got %q)", f.Name, f.Arg)
		}
		if strings.Contains(f.Usage, "(default") {
			t.Errorf("--%s: the usage string holds its default; it belongs in flagDocs", f.Name)
		}
	}
}

// The defaults shown are what Parse gives with no file and no flags.
func TestUsageDefaults(t *testing.T) {
	var b bytes.Buffer
	Usage(&b)
	help := b.String()
	for _, want := range []string{
		"usage: entrepot serve [CONFIG.yaml] [flags]\n",
		"  --listen ADDR             serve the registry API on ADDR\n                            (default :5000; key: listen)\n",
		"(default ./data; key: data)",
		"(default 4; key: prefetch)",
		"(default 0; key: storage.max_size)",
		"(default 127.0.0.1:5001; key: admin.listen)",
		"(default text; key: log.format)",
		"(default info; key: log.level)",
		"ENTREPOT_LOG_LEVEL",
		"README",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("the help lacks %q:\n%s", want, help)
		}
	}
	cfg, err := Parse(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(help, "(default "+cfg.Upstreams[0].Name+",") {
		t.Errorf("the help does not give %s as the first default upstream:\n%s", cfg.Upstreams[0].Name, help)
	}
	for _, line := range strings.Split(help, "\n") {
		if len(line) > helpWidth {
			t.Errorf("line longer than %d: %q", helpWidth, line)
		}
	}
}

// Every flag appears in the help, with its key, whatever its position.
func TestUsageListsEveryFlag(t *testing.T) {
	var b bytes.Buffer
	Usage(&b)
	// Lines are wrapped: compare with the spaces collapsed.
	help := strings.Join(strings.Fields(b.String()), " ")
	(&flags{}).flagSet().VisitAll(func(f *flag.Flag) {
		sf := lookupServeFlag(t, f.Name)
		if !strings.Contains(help, "--"+f.Name+" "+sf.Arg+" ") {
			t.Errorf("the help lacks --%s %s", f.Name, sf.Arg)
		}
		if sf.Key != "" && !strings.Contains(help, "key: "+sf.Key+")") {
			t.Errorf("the help lacks the key %s of --%s", sf.Key, f.Name)
		}
	})
}

func lookupServeFlag(t *testing.T, name string) ServeFlag {
	t.Helper()
	for _, f := range ServeFlags() {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("ServeFlags lacks --%s", name)
	return ServeFlag{}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, text, tail string
		width                    int
		want                     string
	}{
		{"fits", "  a  ", "one two", "(x)", 20, "  a  one two (x)"},
		{"tail moves whole", "  a  ", "one two", "(x y)", 14, "  a  one two\n     (x y)"},
		{"text breaks", "  a  ", "one two three", "(x)", 14, "  a  one two\n     three (x)"},
		{"long tail breaks", "  ", "one", "(x y z)", 6, "  one\n  (x y\n  z)"},
		{"long word stays whole", "  ", "abcdefgh", "(x)", 6, "  abcdefgh\n  (x)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := wrap(tc.prefix, tc.text, tc.tail, tc.width); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
