package config

import (
	"log/slog"
	"net/url"
	"time"
)

// Built-in values, used when neither the file nor a flag sets the key.
const (
	defaultListen                = ":5000"
	defaultData                  = "./data"
	defaultPrefetch              = 4
	maxPrefetch                  = 64
	defaultTTL                   = 60 * time.Second
	defaultConnectTimeout        = 5 * time.Second
	defaultResponseHeaderTimeout = 8 * time.Second
	defaultIdleTimeout           = 30 * time.Second
	defaultHighWatermark         = 0.95
	defaultLowWatermark          = 0.85
	defaultAdminListen           = "127.0.0.1:5001"
	defaultShutdownGrace         = 30 * time.Second
	defaultLogFormat             = "text"
	defaultMaxConnections        = 16
	maxConnections               = 1024
	defaultParallelMinSize       = 32 << 20
	defaultParallelParts         = 8
	maxParts                     = 64
	defaultPartSize              = 8 << 20
	defaultStreamRate            = 256 << 20 // a second
	// minPartSize keeps a part's request and answer headers a small
	// share of its bytes.
	minPartSize = 1 << 20
)

// defaultRateLimitFloor keeps a tenth of an upstream's budget for content
// the cache does not hold.
var defaultRateLimitFloor = Floor{Fraction: 0.10}

// Defaults returns the built-in configuration: listen on :5000, store in
// ./data without a bound (evicting past 95% down to 85% once one is set),
// pull through the major public registries, docker.io first (and so the
// default), warm nothing, and serve the admin API on 127.0.0.1:5001 without
// a token. Each call returns a fresh copy the caller may modify.
func Defaults() *Config {
	cfg := &Config{
		Listen:   defaultListen,
		Data:     defaultData,
		Prefetch: defaultPrefetch,
		Storage:  Storage{HighWatermark: defaultHighWatermark, LowWatermark: defaultLowWatermark},
		Admin:    Admin{Listen: defaultAdminListen},
		Log:      Log{Format: defaultLogFormat, Level: slog.LevelInfo},
		Metrics:  true,

		ShutdownGrace: defaultShutdownGrace,
		Redirect:      Redirect{Expiry: 10 * time.Minute},
		Auth:          Auth{TokenTTL: 5 * time.Minute},
	}
	for _, r := range [...]struct{ name, host string }{
		// Docker Hub is addressed as docker.io, but its registry API lives
		// on another host.
		{"docker.io", "registry-1.docker.io"},
		{"ghcr.io", "ghcr.io"},
		{"quay.io", "quay.io"},
		{"registry.k8s.io", "registry.k8s.io"},
		{"gcr.io", "gcr.io"},
		{"public.ecr.aws", "public.ecr.aws"},
		{"mcr.microsoft.com", "mcr.microsoft.com"},
	} {
		u := &url.URL{Scheme: "https", Host: r.host}
		cfg.Upstreams = append(cfg.Upstreams, NewUpstream(r.name, u))
	}
	cfg.Default = cfg.Upstreams[0].Name
	return cfg
}

// NewUpstream returns an anonymous upstream with the default TTL and
// timeouts: the one place those defaults are set.
func NewUpstream(name string, u *url.URL) Upstream {
	return Upstream{
		Name:                  name,
		URL:                   u,
		TTL:                   defaultTTL,
		ConnectTimeout:        defaultConnectTimeout,
		ResponseHeaderTimeout: defaultResponseHeaderTimeout,
		IdleTimeout:           defaultIdleTimeout,
		RateLimitFloor:        defaultRateLimitFloor,
		MaxConnections:        defaultMaxConnections,
		Parallel:              Parallel{MinSize: defaultParallelMinSize, Parts: defaultParallelParts, PartSize: defaultPartSize, StreamRate: defaultStreamRate},
	}
}
