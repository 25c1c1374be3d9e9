package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/entrepot/entrepot/internal/derive"
)

// fileConfig is the YAML file as written. Pointers and nil slices tell an
// absent key (keep the default) from one set to its zero value.
//
//	listen: ":5000"
//	data: /var/lib/entrepot
//	default: docker.io          # optional; default: the first upstream
//	upstreams:                  # optional; replaces the built-in list
//	  - name: docker.io
//	    url: https://registry-1.docker.io
//	    ttl: 60s                # 0 revalidates on every pull; absent: 60s
//	    username: alice         # optional, needs one of:
//	    password_env: HUB_TOKEN # password read from this variable
//	    password_file: /run/secrets/hub  # or from this file
//	    ratelimit_floor: 10%    # or a count; stop revalidating under it
//	    max_fills: 8            # blob downloads from it at once; 0 (absent): no limit
//	    max_connections: 16     # blob connections for prefetch and parallel parts
//	    parallel:               # blobs this large are fetched as byte ranges at once
//	      min_size: 32MiB       # 0: never
//	      parts: 8              # ranges under way at once, per blob
//	      part_size: 8MiB       # the least bytes per range
//	      stream_rate: 256MiB   # a second: a first answer this fast stays one stream; 0: never
//	    timeouts:               # each optional
//	      connect: 5s
//	      response_header: 8s
//	      idle: 30s
//	    approved_only: true     # serve only images allow names; absent: all but deny's
//	    allow:                  # repository[:tag] patterns, relative to the upstream
//	      - library/nginx       # every tag and digest of the repository
//	      - library/node:20*    # these tags; by digest, any manifest of library/node
//	      - myorg/*             # * matches any characters, / included
//	    deny:                   # never served, even when cached; wins over allow
//	      - library/node:20.0*
//	    push: true              # forward pushes to it (needs auth; access grants push)
//	storage:                    # each optional
//	  max_size: 50GiB           # KiB, MiB, GiB, TiB or kB, MB, GB, TB; 0: no bound
//	  high_watermark: 95%       # or 0.95; evict past it...
//	  low_watermark: 85%        # ...down to it; below high_watermark
//	  max_idle: 30d             # remove what nobody pulled for this long; 0: never
//	  pin:                      # patterns never evicted (oci.CheckPattern)
//	    - docker.io/library/node:20*
//	  s3:                       # content and records in a bucket; data holds fills in progress
//	    endpoint: https://minio.internal:9000  # absent: AWS's, for region
//	    region: eu-west-1
//	    bucket: entrepot
//	    prefix: cache/          # optional
//	    path_style: true        # MinIO, Ceph RGW
//	    access_key_env: S3_KEY  # with secret_key_env; absent: the AWS chain
//	    secret_key_env: S3_SECRET
//	warm:
//	  every: 6h                 # 0 (absent): only at start-up
//	  images:                   # registry written out; the tag may hold *
//	    - docker.io/library/nginx:1.27
//	    - image: docker.io/library/node:20.*
//	      platforms: [linux/amd64, linux/arm64]  # absent: all
//	admin:
//	  listen: 127.0.0.1:5001    # needs a token unless loopback
//	  token_env: ADMIN_TOKEN    # token read from this variable
//	  token_file: /run/secrets/admin  # or from this file
//	log:
//	  format: text              # or json
//	  level: info               # debug, info, warn, error
//	tls:                        # HTTPS on listen; the files are re-read when they change
//	  cert: /etc/entrepot/tls.crt  # PEM chain
//	  key: /etc/entrepot/tls.key
//	  client_ca: /etc/entrepot/clients.pem  # optional: require client certificates
//	auth:                       # off unless htpasswd or tokens are set
//	  htpasswd: /etc/entrepot/htpasswd  # bcrypt users (htpasswd -B), re-read when it changes
//	  tokens_file: /run/secrets/tokens  # or tokens_env: VAR; "name:token" pairs
//	  anonymous: [docker.io]    # upstreams or patterns anyone may pull
//	  groups: {ci: [runner1, runner2]}
//	  token_ttl: 5m             # the token flow's tokens
//	  token_key_file: /run/secrets/key  # or token_key_env; shared by replicas
//	  realm: https://cache.example/token  # optional: behind a proxy
//	access:                     # absent: every authenticated user pulls everything
//	  - users: [group:ci, alice]  # names, group:NAME, "*" (authenticated), anonymous
//	    repos: [docker.io/library/*, ghcr.io/org/**]
//	    actions: [pull]         # pull, push, admin
//	limits:
//	  client_rps: 50            # requests a second per client (its user, else its address); 0: none
//	  client_burst: 100         # default: 2×client_rps, at least 20
//	audit:
//	  file: /var/log/entrepot/audit.jsonl  # a JSON line per pull decision; "-": stdout; reopened on SIGHUP
//	cluster:                    # replicas on one bucket acting as one cache
//	  redis: redis://redis:6379/0  # or redis_env: VAR, when the URL holds a password
//	  advertise: 10.0.0.5:5000  # where the other replicas reach this one
//	  secret_env: PEER_SECRET   # their shared secret (16 bytes or more)
//	redirect:                   # stored blobs' GETs answer 307 to a presigned URL (needs storage.s3)
//	  enabled: true
//	  expiry: 10m
//	  clients: [10.0.0.0/8]     # networks redirected; absent: all
//	  direct: [10.20.0.0/16]    # networks always served by the replica
//	metrics: true               # /metrics on listen too (always on admin.listen)
//	shutdown_grace: 30s         # running pulls may finish this long after SIGTERM
//	derive:                     # derived images, served as derived/<name>:<tag>
//	  - name: vault
//	    from: docker.io/hashicorp/vault:1.14  # the tag follows the base's unless tag is set
//	    volumes: [/etc/vault]
//	    env: {VAULT_LOG_LEVEL: info}
//	    files:                  # one extra layer: dir, content, source or symlink
//	      - {path: /etc/vault, dir: true, mode: "0777"}
//	webhook:                    # read by `entrepot webhook` only (webhook.go)
//	  cache: cache.example:5000
type fileConfig struct {
	Listen *string `yaml:"listen"`
	Data   *string `yaml:"data"`
	// Prefetch is a pointer so that an explicit 0 (off) differs from absent.
	Prefetch *int    `yaml:"prefetch"`
	Default  *string `yaml:"default"`
	// Upstreams is nil when the key is absent (or null), and non-nil but
	// empty for "upstreams: []", which is an error.
	Upstreams []fileUpstream `yaml:"upstreams"`
	// The sections are values: an absent one has only nil fields, which
	// keep the defaults.
	Storage  fileStorage  `yaml:"storage"`
	Warm     fileWarm     `yaml:"warm"`
	Admin    fileAdmin    `yaml:"admin"`
	Log      fileLog      `yaml:"log"`
	TLS      fileTLS      `yaml:"tls"`
	Auth     fileAuth     `yaml:"auth"`
	Access   []fileGrant  `yaml:"access"`
	Audit    fileAudit    `yaml:"audit"`
	Limits   fileLimits   `yaml:"limits"`
	Cluster  fileCluster  `yaml:"cluster"`
	Redirect fileRedirect `yaml:"redirect"`
	// Webhook is read by `entrepot webhook` only (webhook.go).
	Webhook fileWebhook `yaml:"webhook"`
	// Derive is decoded strictly by derive.Spec itself, which refuses
	// run and build commands with what to write instead.
	Derive []derive.Spec `yaml:"derive"`

	Metrics       *bool   `yaml:"metrics"`
	ShutdownGrace *string `yaml:"shutdown_grace"`
}

// fileLog is the log section.
type fileLog struct {
	Format *string `yaml:"format"`
	Level  *string `yaml:"level"`
}

// fileUpstream is one entry of upstreams. Durations are strings, parsed
// here rather than by yaml.v3 so that errors can name the key.
type fileUpstream struct {
	Name         string       `yaml:"name"`
	URL          string       `yaml:"url"`
	TTL          *string      `yaml:"ttl"`
	Username     string       `yaml:"username"`
	PasswordEnv  string       `yaml:"password_env"`
	PasswordFile string       `yaml:"password_file"`
	Timeouts     fileTimeouts `yaml:"timeouts"`
	// RateLimitFloor is a percentage or a count; yaml.v3 turns a number
	// into its string.
	RateLimitFloor *string `yaml:"ratelimit_floor"`
	MaxFills       *int    `yaml:"max_fills"`
	MaxConnections *int    `yaml:"max_connections"`
	Parallel       struct {
		MinSize  *string `yaml:"min_size"`
		Parts    *int    `yaml:"parts"`
		PartSize *string `yaml:"part_size"`
		// StreamRate is a size, read as that many bytes a second.
		StreamRate *string `yaml:"stream_rate"`
	} `yaml:"parallel"`
	// The approved-images policy (policy.go).
	Allow        []string `yaml:"allow"`
	Deny         []string `yaml:"deny"`
	ApprovedOnly bool     `yaml:"approved_only"`
	Push         bool     `yaml:"push"`
}

// fileTimeouts is the timeouts mapping of an upstream.
type fileTimeouts struct {
	Connect        *string `yaml:"connect"`
	ResponseHeader *string `yaml:"response_header"`
	Idle           *string `yaml:"idle"`
}

// loadFile reads the YAML file at path onto cfg. The file is validated on
// its own, before any flag applies: a broken file is an error even when
// --upstream would replace its upstreams. Only their credentials are not
// read then (replaced): a password variable not set where the upstreams
// are replaced is no error.
func loadFile(cfg *Config, path string, getenv func(string) string, replaced bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var fc fileConfig
	if err := decodeYAML(data, &fc); err != nil {
		return yamlError(path, err)
	}
	if err := fc.apply(cfg, getenv, replaced); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// decodeYAML decodes exactly one YAML document, refusing unknown keys so
// that a typo (passwd_env) fails instead of being silently ignored.
func decodeYAML(data []byte, fc *fileConfig) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(fc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return errors.New("more than one YAML document")
	default:
		return err
	}
}

var (
	yamlLine         = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	// yamlGoTypes names our Go types the way the file's reader sees them,
	// for messages like "cannot unmarshal !!str `x` into []config.fileUpstream".
	yamlGoTypes = strings.NewReplacer(
		"[]config.fileUpstream", "a list of upstreams",
		"config.fileConfig", "a mapping of keys",
		"config.fileUpstream", "an upstream mapping",
		"config.fileTimeouts", "a timeouts mapping",
		"config.fileStorage", "a storage mapping",
		"[]config.fileWarmImage", "a list of images",
		"config.fileWarmImage", "an image mapping",
		"config.warmImageMapping", "an image or an image mapping",
		"config.fileWarm", "a warm mapping",
		"config.fileAdmin", "an admin mapping",
		"config.fileLog", "a log mapping",
	)
)

// yamlError turns an error of yaml.v3 into one line that starts with the
// file name: `entrepot.yaml:3: unknown key "pasword_env"`. yaml.v3 reports
// type errors as a multi-line list and names our Go types; both are
// rewritten. yaml.v3 is frozen, so its messages will not change under us;
// any we do not recognise pass through unchanged.
func yamlError(path string, err error) error {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	lines := make([]string, len(msgs))
	for i, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		loc := path
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			loc, m = path+":"+g[1], g[2]
		}
		if g := yamlUnknownField.FindStringSubmatch(m); g != nil {
			m = fmt.Sprintf("unknown key %q", g[1])
		}
		m = yamlGoTypes.Replace(m)
		lines[i] = loc + ": " + m
	}
	return errors.New(strings.Join(lines, "; "))
}

// apply validates the file's values and sets them on cfg.
func (fc *fileConfig) apply(cfg *Config, getenv func(string) string, replaced bool) error {
	if fc.Listen != nil {
		if err := checkListen(*fc.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		cfg.Listen = *fc.Listen
	}
	if fc.Data != nil {
		if err := checkData(*fc.Data); err != nil {
			return fmt.Errorf("data: %w", err)
		}
		cfg.Data = *fc.Data
	}
	if fc.Prefetch != nil {
		if err := checkPrefetch(*fc.Prefetch); err != nil {
			return fmt.Errorf("prefetch: %w", err)
		}
		cfg.Prefetch = *fc.Prefetch
	}
	if fc.Upstreams != nil {
		if len(fc.Upstreams) == 0 {
			return errors.New("upstreams: must list at least one upstream")
		}
		ups := make([]Upstream, 0, len(fc.Upstreams))
		seen := make(map[string]bool)
		for i, fu := range fc.Upstreams {
			key := fmt.Sprintf("upstreams[%d]", i)
			u, err := fu.upstream(key, getenv, replaced)
			if err != nil {
				return err
			}
			if seen[u.Name] {
				return fmt.Errorf("%s.name: duplicate %q", key, u.Name)
			}
			seen[u.Name] = true
			ups = append(ups, u)
		}
		cfg.Upstreams = ups
		cfg.Default = ups[0].Name
	}
	if fc.Default != nil {
		cfg.Default = *fc.Default
	}
	if err := checkDefault(cfg); err != nil {
		return err
	}
	if err := fc.Storage.apply(&cfg.Storage); err != nil {
		return err
	}
	if fc.Storage.S3 != nil {
		s3, err := fc.Storage.S3.apply(getenv)
		if err != nil {
			return err
		}
		cfg.Storage.S3 = s3
	}
	if err := fc.Cluster.apply(cfg, getenv); err != nil {
		return err
	}
	if err := fc.Redirect.apply(cfg); err != nil {
		return err
	}
	if err := fc.Warm.apply(&cfg.Warm); err != nil {
		return err
	}
	if err := fc.Log.apply(&cfg.Log); err != nil {
		return err
	}
	fc.TLS.apply(&cfg.TLS)
	if fc.Derive != nil {
		cfg.Derive = fc.Derive // before auth, whose patterns may name derived/
	}
	if err := fc.Auth.apply(cfg, fc.Access, getenv); err != nil {
		return err
	}
	for i, u := range cfg.Upstreams {
		if u.Push && !cfg.Auth.Enabled() {
			return fmt.Errorf("upstreams[%d].push: pushes need authenticated clients: set auth (htpasswd or tokens) and grant push in access", i)
		}
	}
	if err := fc.Audit.apply(&cfg.Audit); err != nil {
		return err
	}
	if err := fc.Limits.apply(&cfg.Limits); err != nil {
		return err
	}
	if fc.Metrics != nil {
		cfg.Metrics = *fc.Metrics
	}
	if fc.ShutdownGrace != nil {
		d, err := parseTimeout(*fc.ShutdownGrace)
		if err != nil {
			return fmt.Errorf("shutdown_grace: %w", err)
		}
		cfg.ShutdownGrace = d
	}
	return fc.Admin.apply(&cfg.Admin, getenv)
}

// checkDefault checks that the default upstream is one of the upstreams.
func checkDefault(cfg *Config) error {
	var names []string
	for _, u := range cfg.Upstreams {
		if u.Name == cfg.Default {
			return nil
		}
		names = append(names, u.Name)
	}
	return fmt.Errorf("default: %q is not a configured upstream (configured: %s)", cfg.Default, strings.Join(names, ", "))
}

// upstream validates one entry, named key in errors, and resolves its
// password unless the entry is replaced by flags.
func (fu *fileUpstream) upstream(key string, getenv func(string) string, replaced bool) (Upstream, error) {
	if err := checkName(fu.Name); err != nil {
		return Upstream{}, fmt.Errorf("%s.name: %w", key, err)
	}
	u, err := parseURL(fu.URL)
	if err != nil {
		return Upstream{}, fmt.Errorf("%s.url: %w", key, err)
	}
	up := NewUpstream(fu.Name, u)

	for _, d := range []struct {
		key   string
		value *string
		parse func(string) (time.Duration, error)
		dst   *time.Duration
	}{
		{"ttl", fu.TTL, parseDuration, &up.TTL},
		{"timeouts.connect", fu.Timeouts.Connect, parseTimeout, &up.ConnectTimeout},
		{"timeouts.response_header", fu.Timeouts.ResponseHeader, parseTimeout, &up.ResponseHeaderTimeout},
		{"timeouts.idle", fu.Timeouts.Idle, parseTimeout, &up.IdleTimeout},
	} {
		if d.value == nil {
			continue // absent: keep the default
		}
		if *d.dst, err = d.parse(*d.value); err != nil {
			return Upstream{}, fmt.Errorf("%s.%s: %w", key, d.key, err)
		}
	}

	if fu.RateLimitFloor != nil {
		if up.RateLimitFloor, err = parseFloor(*fu.RateLimitFloor); err != nil {
			return Upstream{}, fmt.Errorf("%s.ratelimit_floor: %w", key, err)
		}
	}

	up.Push = fu.Push
	if fu.MaxFills != nil {
		if *fu.MaxFills < 0 {
			return Upstream{}, fmt.Errorf("%s.max_fills: %d is negative (0: no limit)", key, *fu.MaxFills)
		}
		up.MaxFills = *fu.MaxFills
	}
	if err := fu.connections(key, &up); err != nil {
		return Upstream{}, err
	}

	if err := fu.policy(key, &up); err != nil {
		return Upstream{}, err
	}

	if replaced {
		return up, nil
	}
	up.Username = fu.Username
	up.Password, err = fu.password(key, getenv)
	return up, err
}

// connections reads max_connections and parallel onto up.
func (fu *fileUpstream) connections(key string, up *Upstream) error {
	if n := fu.MaxConnections; n != nil {
		if *n < 1 || *n > maxConnections {
			return fmt.Errorf("%s.max_connections: %d must be from 1 to %d", key, *n, maxConnections)
		}
		up.MaxConnections = *n
	}
	p := &fu.Parallel
	for _, s := range []struct {
		key   string
		value *string
		dst   *int64
	}{
		{"parallel.min_size", p.MinSize, &up.Parallel.MinSize},
		{"parallel.part_size", p.PartSize, &up.Parallel.PartSize},
		{"parallel.stream_rate", p.StreamRate, &up.Parallel.StreamRate},
	} {
		if s.value == nil {
			continue
		}
		n, err := ParseSize(*s.value)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", key, s.key, err)
		}
		*s.dst = n
	}
	if p.Parts != nil {
		if *p.Parts < 1 || *p.Parts > maxParts {
			return fmt.Errorf("%s.parallel.parts: %d must be from 1 to %d", key, *p.Parts, maxParts)
		}
		up.Parallel.Parts = *p.Parts
	}
	if ps := up.Parallel.PartSize; ps < minPartSize {
		return fmt.Errorf("%s.parallel.part_size: %s is below the least part size, %s", key, FormatSize(ps), FormatSize(minPartSize))
	}
	return nil
}

// password checks that username and a password source come together, and
// reads the password. Half a credential is refused rather than sent: the
// upstream would answer 401 on every pull, far from the cause.
func (fu *fileUpstream) password(key string, getenv func(string) string) (Secret, error) {
	hasPassword := fu.PasswordEnv != "" || fu.PasswordFile != ""
	switch {
	case fu.PasswordEnv != "" && fu.PasswordFile != "":
		// readSecret refuses this; say so before looking at the username.
	case fu.Username == "" && hasPassword:
		return "", fmt.Errorf("%s.username: is required with password_env or password_file", key)
	case fu.Username != "" && !hasPassword:
		return "", fmt.Errorf("%s.username: %q needs password_env or password_file", key, fu.Username)
	}
	return readSecret(key, "password", fu.PasswordEnv, fu.PasswordFile, getenv)
}

// readSecret reads a secret from the variable env or the file at path,
// at most one of which may be set; neither is no secret. In errors the
// two are the keys <key>.<name>_env and <key>.<name>_file.
func readSecret(key, name, env, path string, getenv func(string) string) (Secret, error) {
	switch {
	case env != "" && path != "":
		return "", fmt.Errorf("%s: set %s_env or %s_file, not both", key, name, name)
	case env != "":
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s.%s_env: %s is not set (or is empty)", key, name, env)
		}
		return Secret(v), nil
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s.%s_file: %w", key, name, err)
		}
		// Files written by echo or an editor end in a newline that is not
		// part of the secret.
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("%s.%s_file: %s is empty", key, name, path)
		}
		return Secret(v), nil
	}
	return "", nil
}
