// Package config holds Entrepot's configuration: one typed struct with
// documented defaults, read from an optional YAML file and command-line
// flags, and validated once at start-up.
package config

import (
	"github.com/entrepot/entrepot/internal/auth"
	"github.com/entrepot/entrepot/internal/derive"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"time"
)

// Config is the whole configuration of `entrepot serve`.
type Config struct {
	// Listen is the address the registry API listens on. Default ":5000".
	Listen string
	// Data is the directory of the filesystem store. Default "./data".
	Data string
	// Default is the name of the upstream that serves requests that name no
	// upstream (dockerd's registry-mirrors). Default: the first upstream.
	Default string
	// Prefetch, unless 0, fills the config and layers of an image
	// manifest the cache did not hold in the background when a client
	// GETs it, so that the client's blob requests join fills already
	// under way. Prefetches use the connections the upstream's clients
	// leave (Upstream.MaxConnections). Default 4 (on); the number is no
	// longer a bound, and only 0 (off) differs.
	Prefetch int
	// Upstreams are the registries this cache pulls through, in order.
	// Default: the preconfigured public registries (see Defaults).
	Upstreams []Upstream
	// Storage bounds the store (the storage section).
	Storage Storage
	// Warm lists images fetched at start and on a schedule (the warm
	// section).
	Warm Warm
	// Admin is the admin API's listener (the admin section).
	Admin Admin
	// TLS serves the registry API over HTTPS (the tls section).
	TLS TLS
	// Auth authenticates clients (the auth section); Access is who may do
	// what (the access list), with authentication on.
	Auth   Auth
	Access []auth.Grant
	// Audit is the audit trail of pull decisions (the audit section).
	Audit Audit
	// Limits are the clients' fair use (the limits section).
	Limits Limits
	// Cluster makes replicas on one bucket one cache (the cluster
	// section); Redirect sends stored blobs' bytes from the bucket (the
	// redirect section).
	Cluster  Cluster
	Redirect Redirect
	// Derive declares derived images (the derive list): upstream images
	// with a few changes, served as derived/<name>:<tag>.
	Derive []derive.Spec
	// Log is how the server logs (the log section).
	Log Log
	// Metrics serves /metrics on the registry API's listener as well as
	// on the admin listener, which always serves it (metrics). Default
	// true.
	Metrics bool
	// ShutdownGrace bounds how long running pulls and fills may go on
	// after SIGTERM (shutdown_grace). Default 30s.
	ShutdownGrace time.Duration
}

// Log is the log section.
type Log struct {
	// Format is "text" or "json" (log.format, --log-format). Default
	// "text".
	Format string
	// Level is the least level logged (log.level, --log-level, or the
	// variable ENTREPOT_LOG_LEVEL): debug, info, warn or error. Default
	// info.
	Level slog.Level
}

// Storage bounds what the store keeps.
type Storage struct {
	// S3 is the bucket that holds content and records (storage.s3); nil:
	// the data directory holds everything.
	S3 *S3
	// MaxSize bounds the committed content in bytes (storage.max_size,
	// --max-size, written like 50GiB or 500MiB). 0, the default, means
	// no bound.
	MaxSize int64
	// HighWatermark and LowWatermark are fractions of MaxSize: past the
	// high one, the least recently pulled content is evicted down to the
	// low one. Defaults 0.95 and 0.85 (written 95% and 85%, or 0.95).
	HighWatermark, LowWatermark float64
	// MaxIdle removes content nobody pulled for this long
	// (storage.max_idle, e.g. 30d). 0, the default, means never.
	MaxIdle time.Duration
	// Pin lists patterns (package oci's CheckPattern) whose content is
	// never evicted or expired.
	Pin []string
}

// Warm is the warm-up list.
type Warm struct {
	// Every is the interval between runs after the first, at start-up
	// (warm.every, e.g. 6h). 0, the default, runs only at start-up.
	Every time.Duration
	// Images are the images to fetch.
	Images []WarmImage
}

// WarmImage is one entry of warm.images.
type WarmImage struct {
	// Image is a reference with its registry written out
	// (docker.io/library/nginx:1.27), whose tag may be a pattern
	// (docker.io/library/nginx:1.27.*) or a digest.
	Image string
	// Platforms are the platforms wanted of an index (linux/amd64,
	// linux/arm64/v8). Empty means all.
	Platforms []string
}

// Admin is the admin API's listener.
type Admin struct {
	// Listen is the admin API's address (admin.listen, --admin-listen).
	// Default 127.0.0.1:5001. Without a Token, it must be a loopback
	// address.
	Listen string
	// Token is the bearer token the admin API requires, read from the
	// variable admin.token_env or the file admin.token_file. Empty: no
	// token is required (loopback only).
	Token Secret
}

// Upstream is one registry the cache pulls from.
type Upstream struct {
	// Name is how clients address it: the path prefix (/v2/<name>/...) and
	// the value of containerd's ?ns= parameter. Example "docker.io".
	Name string
	// URL is the registry's base URL, e.g. https://registry-1.docker.io.
	URL *url.URL
	// Username and Password authenticate to the upstream (and its token
	// realm). Empty means anonymous. Password is read from an environment
	// variable or a file, never written in the configuration itself.
	Username string
	Password Secret
	// TTL is how long a tag stays fresh before it is revalidated with a
	// HEAD. Default 60s; 0 revalidates on every pull.
	TTL time.Duration
	// ConnectTimeout bounds dialing and the TLS handshake. Default 5s.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request is sent. Default 8s, so that a black-holed upstream fails an
	// uncached request within 10s (with the 5s connect timeout unused: the
	// connection is accepted).
	ResponseHeaderTimeout time.Duration
	// IdleTimeout abandons a response body that delivers no byte for this
	// long. Default 30s.
	IdleTimeout time.Duration
	// RateLimitFloor is the part of the upstream's rate-limit budget kept
	// for content the cache does not hold (ratelimit_floor): once the
	// remaining budget falls under it, cached tags are served as they are,
	// without revalidation. Default 10% of the limit.
	RateLimitFloor Floor
	// MaxFills bounds the blob downloads from the upstream under way at
	// once (max_fills); past it a new one waits a moment, then the client
	// gets 429. 0, the default, is no limit.
	MaxFills int
	// MaxConnections is the upstream's budget of blob connections
	// (max_connections), shared by clients' fills, prefetches and the
	// extra parts of parallel fetches: a client's fill takes one when one
	// is free and never waits for one; a prefetch waits; a part starts
	// only while one is free. Default 16.
	MaxConnections int
	// Parallel is how large blobs are fetched (parallel).
	Parallel Parallel
	// Allow, Deny and ApprovedOnly are the upstream's approved-images
	// policy (allow, deny, approved_only): repository patterns, each with
	// an optional tag pattern, written relative to the upstream
	// (oci.CheckRepoPattern: library/nginx, library/node:20*, myorg/*).
	// A Deny match is never served, whatever Allow says. With
	// ApprovedOnly, only Allow matches are served; without it, everything
	// Deny does not match (and Allow must be empty). Tags are matched by
	// tag; manifests by digest, blobs, tag lists and referrers by their
	// repository alone. Default: no patterns, every image is served.
	Allow, Deny  []string
	ApprovedOnly bool
	// Push forwards pushes to the upstream (push): blob uploads, manifest
	// PUTs and DELETEs, sent with the upstream's credentials, by clients
	// the access rules grant push. It needs authentication (auth).
	// Default false: pushes answer 405.
	Push bool
}

// Parallel is how a blob of at least MinSize bytes is fetched: as up to
// Parts byte ranges at once, of PartSize bytes each, lowest offsets first,
// within the upstream's MaxConnections. A blob of PartSize to MinSize
// bytes comes as two ranges at once (its first PartSize bytes and the
// rest); a smaller one in one answer. MinSize 0 never fetches in parts.
// Defaults 32 MiB, 8 and 8 MiB.
//
// StreamRate is the speed, in bytes a second, at or above which the first
// bytes of a blob's answer make the fill go on with that one answer
// (stream_rate): an upstream that near (on the LAN, on loopback) gains
// nothing from parts, which would cost requests and CPU. Default 256 MiB;
// 0 always fetches in parts.
type Parallel struct {
	MinSize    int64
	Parts      int
	PartSize   int64
	StreamRate int64
}

// Floor is a rate-limit floor: a fraction of the limit (10%) or a number
// of requests (20). The zero Floor is no floor.
type Floor struct {
	Fraction float64
	Count    int64
}

// Of returns the floor for an upstream whose limit is limit.
func (f Floor) Of(limit int64) int64 {
	if f.Fraction > 0 {
		return int64(math.Ceil(f.Fraction * float64(limit)))
	}
	return f.Count
}

// String writes the floor as it is configured: 10% or 20.
func (f Floor) String() string {
	if f.Fraction > 0 {
		return formatPercent(f.Fraction)
	}
	return strconv.FormatInt(f.Count, 10)
}

// Secret is a credential. It never prints: fmt, slog and JSON all see
// "REDACTED", so a configuration can be logged whole. Reveal returns it.
type Secret string

const redacted = "REDACTED"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (s Secret) Reveal() string             { return string(s) }
