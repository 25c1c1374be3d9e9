// Package config holds Entrepot's configuration: one typed struct with
// documented defaults, read from an optional YAML file and command-line
// flags, and validated once at start-up.
package config

import (
	"log/slog"
	"net/url"
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
	// Prefetch is how many of a manifest's blobs are filled at once, per
	// upstream, in the background when a client GETs an image manifest
	// the cache did not hold: the client's blob requests then join fills
	// already under way. 0 turns prefetch off. Default 4.
	Prefetch int
	// Upstreams are the registries this cache pulls through, in order.
	// Default: the preconfigured public registries (see Defaults).
	Upstreams []Upstream
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
