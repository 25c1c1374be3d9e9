package config

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Parse reads the arguments of `entrepot serve` (flags, and the YAML file
// named by --config) into a validated Config. Precedence, lowest first:
// Defaults, the file, the flags.
//
// Flags (-x and --x both work, as with package flag):
//
//	--config FILE        YAML configuration file (see file.go for its keys)
//	--listen ADDR        address to listen on, e.g. :5000
//	--data DIR           directory of the filesystem store
//	--upstream NAME=URL  repeatable; replaces the whole upstream list of the
//	                     file or the defaults, and the first is the default
//	--max-size SIZE      bound on the store, e.g. 50GiB (storage.max_size)
//	--admin-listen ADDR  address of the admin API (admin.listen)
//	--log-format FORMAT  text or json (log.format)
//	--log-level LEVEL    debug, info, warn or error (log.level)
//
// A configuration file may also be given as the one argument, before or
// after the flags: `entrepot serve entrepot.yaml`. ENTREPOT_LOG_LEVEL sets
// the log level over the file, and --log-level over both.
//
// Once file and flags are applied, the admin API's address is checked
// against the rest: without a token it must be a loopback address, and it
// must differ from the registry API's.
//
// getenv resolves password_env and admin.token_env; main passes os.Getenv,
// tests a map lookup. A nil getenv means os.Getenv.
//
// Every error is one line that names the offending key or flag. For -h or
// --help the error is flag.ErrHelp; nothing is printed.
func Parse(args []string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var f flags
	fs := f.flagSet()
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		// `entrepot serve CONFIG.yaml`, as registry and zot take it, with
		// flags before or after it.
		if f.config != "" {
			return nil, fmt.Errorf("unexpected argument %q: the configuration file is %q (--config)", fs.Arg(0), f.config)
		}
		f.config = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, err
		}
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("unexpected argument %q: one configuration file only", fs.Arg(0))
		}
	}

	cfg := Defaults()
	if f.config != "" {
		// Upstreams that --upstream replaces are checked, but their
		// credentials are not read: they will not be used.
		if err := loadFile(cfg, f.config, getenv, len(f.upstreams) > 0); err != nil {
			return nil, err
		}
	}
	if v := getenv("ENTREPOT_LOG_LEVEL"); v != "" {
		level, err := parseLevel(v)
		if err != nil {
			return nil, fmt.Errorf("ENTREPOT_LOG_LEVEL: %w", err)
		}
		cfg.Log.Level = level
	}
	if err := f.apply(cfg); err != nil {
		return nil, err
	}
	if err := checkAdmin(cfg, &f); err != nil {
		return nil, err
	}
	if err := checkTLS(cfg.TLS, &f); err != nil {
		return nil, err
	}
	if err := checkDerive(cfg); err != nil {
		return nil, err
	}
	if cfg.Cluster.Enabled() && cfg.Cluster.Advertise == "" {
		return nil, fmt.Errorf("cluster.advertise (or --cluster-advertise): required with cluster.redis (the address other replicas reach this one at)")
	}
	return cfg, nil
}

// flags holds the command line as given. A nil pointer is a flag not given,
// so that it does not override the file.
type flags struct {
	config    string
	listen    *string
	data      *string
	prefetch  *int
	upstreams []string // raw NAME=URL values, parsed in apply
	// maxSize and adminListen are raw too, so that their errors name the
	// flag the way the others do.
	maxSize     *string
	adminListen *string
	logFormat   *string
	logLevel    *string
	tlsCert     *string
	tlsKey      *string
	advertise   *string
}

func (f *flags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	// Errors are returned to main, which reports them once; package flag
	// would otherwise print them (and the usage) itself.
	fs.SetOutput(io.Discard)
	// The usage strings are the help's (Usage): the word in backquotes is
	// the argument's name. Each flag's key and default are in flagDocs.
	fs.StringVar(&f.config, "config", "", "read the configuration from the YAML `FILE`, as the argument CONFIG.yaml does")
	fs.Func("listen", "serve the registry API on `ADDR`", func(s string) error {
		f.listen = &s
		return nil
	})
	fs.Func("data", "keep the store in `DIR`", func(s string) error {
		f.data = &s
		return nil
	})
	fs.Func("prefetch", "after a manifest miss, fill up to `N` of its blobs at once per upstream in the background; 0 turns it off", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		f.prefetch = &n
		return nil
	})
	// Values are only collected here: an error returned from a flag.Func
	// would come back wrapped as `invalid value "..." for flag -upstream`.
	fs.Func("upstream", "add the upstream `NAME=URL`: the registry at URL, addressed as NAME; repeatable, the flags replace the whole upstream list and the first is the default", func(s string) error {
		f.upstreams = append(f.upstreams, s)
		return nil
	})
	fs.Func("max-size", "bound the store's content to `SIZE`, e.g. 50GiB; 0 means no bound", func(s string) error {
		f.maxSize = &s
		return nil
	})
	fs.Func("admin-listen", "serve the admin API on `ADDR`; without a token, a loopback address", func(s string) error {
		f.adminListen = &s
		return nil
	})
	fs.Func("log-format", "write the log as `FORMAT`: text or json", func(s string) error {
		f.logFormat = &s
		return nil
	})
	fs.Func("log-level", "log from `LEVEL` up: debug, info, warn or error", func(s string) error {
		f.logLevel = &s
		return nil
	})
	fs.Func("tls-cert", "serve HTTPS with the certificate chain in the PEM `FILE` (with --tls-key); re-read when it changes", func(s string) error {
		f.tlsCert = &s
		return nil
	})
	fs.Func("tls-key", "the private key of --tls-cert, a PEM `FILE`", func(s string) error {
		f.tlsKey = &s
		return nil
	})
	fs.Func("cluster-advertise", "tell the other replicas of the cluster to reach this one at `ADDR` (host:port or a URL): each replica its own, e.g. its pod IP", func(s string) error {
		f.advertise = &s
		return nil
	})
	return fs
}

// apply overrides cfg with the flags that were given.
func (f *flags) apply(cfg *Config) error {
	if f.listen != nil {
		if err := checkListen(*f.listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		cfg.Listen = *f.listen
	}
	if f.data != nil {
		if err := checkData(*f.data); err != nil {
			return fmt.Errorf("--data: %w", err)
		}
		cfg.Data = *f.data
	}
	if f.prefetch != nil {
		if err := checkPrefetch(*f.prefetch); err != nil {
			return fmt.Errorf("--prefetch: %w", err)
		}
		cfg.Prefetch = *f.prefetch
	}
	if f.maxSize != nil {
		n, err := ParseSize(*f.maxSize)
		if err != nil {
			return fmt.Errorf("--max-size: %w", err)
		}
		cfg.Storage.MaxSize = n
	}
	if f.adminListen != nil {
		if err := checkListen(*f.adminListen); err != nil {
			return fmt.Errorf("--admin-listen: %w", err)
		}
		cfg.Admin.Listen = *f.adminListen
	}
	if f.logFormat != nil {
		if err := checkLogFormat(*f.logFormat); err != nil {
			return fmt.Errorf("--log-format: %w", err)
		}
		cfg.Log.Format = *f.logFormat
	}
	if f.logLevel != nil {
		level, err := parseLevel(*f.logLevel)
		if err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		cfg.Log.Level = level
	}
	if f.tlsCert != nil {
		cfg.TLS.Cert = *f.tlsCert
	}
	if f.tlsKey != nil {
		cfg.TLS.Key = *f.tlsKey
	}
	if f.advertise != nil {
		if !cfg.Cluster.Enabled() {
			return fmt.Errorf("--cluster-advertise: set without cluster.redis")
		}
		if err := checkAdvertise(*f.advertise); err != nil {
			return fmt.Errorf("--cluster-advertise: %w", err)
		}
		cfg.Cluster.Advertise = *f.advertise
	}
	if len(f.upstreams) == 0 {
		return nil
	}
	ups := make([]Upstream, 0, len(f.upstreams))
	seen := make(map[string]bool)
	for _, v := range f.upstreams {
		u, err := parseUpstreamFlag(v)
		if err != nil {
			return err
		}
		if seen[u.Name] {
			return fmt.Errorf("--upstream %q: duplicate name %q", v, u.Name)
		}
		seen[u.Name] = true
		ups = append(ups, u)
	}
	cfg.Upstreams = ups
	cfg.Default = ups[0].Name
	return nil
}

// checkAdmin checks the admin API's address against the rest of cfg,
// naming each address by the flag that set it, or else its key. Without a
// token the admin API must be reachable from this machine only: anyone who
// reaches it could evict or warm the cache.
func checkAdmin(cfg *Config, f *flags) error {
	key, listenKey := "admin.listen", "listen"
	if f.adminListen != nil {
		key = "--admin-listen"
	}
	if f.listen != nil {
		listenKey = "--listen"
	}
	if cfg.Admin.Listen == cfg.Listen && !strings.HasSuffix(cfg.Listen, ":0") { // port 0: each its own free port
		return fmt.Errorf("%s: %q is also the address of %s; the admin API needs one of its own", key, cfg.Admin.Listen, listenKey)
	}
	if cfg.Admin.Token == "" {
		if err := checkLoopback(cfg.Admin.Listen); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// parseUpstreamFlag parses one --upstream NAME=URL. The upstream gets the
// default TTL and timeouts and no credentials; those need the file.
func parseUpstreamFlag(v string) (Upstream, error) {
	name, rawURL, ok := strings.Cut(v, "=")
	if !ok {
		return Upstream{}, fmt.Errorf("--upstream %q: want NAME=URL", redactURL(v))
	}
	// The flag's value is quoted in errors; hide a password in its URL.
	key := fmt.Sprintf("--upstream %q", name+"="+redactURL(rawURL))
	if err := checkName(name); err != nil {
		return Upstream{}, fmt.Errorf("%s: name %w", key, err)
	}
	u, err := parseURL(rawURL)
	if err != nil {
		return Upstream{}, fmt.Errorf("%s: url %w", key, err)
	}
	return NewUpstream(name, u), nil
}

// redactURL returns raw with any password replaced, for error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
