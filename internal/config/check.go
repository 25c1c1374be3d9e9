package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The checks below validate one value each. Their errors do not name the
// key, because the same value can come from the file or from a flag; the
// caller prefixes the key ("upstreams[1].url: ", "--listen: ").

// upstreamName matches lowercase DNS-like labels joined by dots, with an
// optional port: docker.io, my-registry.example.com, localhost:5000, local.
// Labels may hold inner hyphens, so punycode (xn--...) names work too.
var upstreamName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$`)

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("is required")
	case name == "v2":
		// Names are path prefixes under /v2/; an upstream called v2 would
		// make /v2/v2/... read like a doubled API root.
		return errors.New(`"v2" is reserved`)
	case !upstreamName.MatchString(name):
		return fmt.Errorf("%q must be a lowercase host name with an optional :port, e.g. docker.io or localhost:5000", name)
	}
	return nil
}

// parseURL parses an upstream's base URL. A trailing slash is trimmed so
// that callers can append "/v2/..." without doubling it.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Report only the cause: url.Error repeats the whole URL, which
		// could hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("is malformed: %v", err)
	}
	switch {
	case u.User != nil:
		return nil, fmt.Errorf("%q must not contain credentials; use username and password_env or password_file", u.Redacted())
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return nil, fmt.Errorf("%q must be an http or https URL", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q must not have a query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// parseDuration parses a Go duration. A bare number is refused rather than
// guessed at: 60 could mean seconds or, to time.Duration, nanoseconds.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, convErr := strconv.ParseFloat(s, 64); convErr == nil {
			return 0, fmt.Errorf("%q has no unit; use a unit, e.g. 60s", s)
		}
		return 0, fmt.Errorf("%q is not a duration, e.g. 60s or 1m30s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q must not be negative", s)
	}
	return d, nil
}

// parseTimeout is parseDuration for timeouts, where zero is refused: it
// would not mean "no timeout" but "fail at once".
func parseTimeout(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err == nil && d == 0 {
		err = fmt.Errorf("%q must be positive", s)
	}
	return d, err
}

// checkListen accepts host:port with a numeric port; the host may be empty
// (":5000", all interfaces).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q must be host:port, e.g. :5000 or 127.0.0.1:5000", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q must have a port from 0 to 65535, e.g. :5000", addr)
	}
	return nil
}

func checkData(dir string) error {
	if dir == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// checkPrefetch accepts 0 (off) up to maxPrefetch parallel fills.
func checkPrefetch(n int) error {
	if n < 0 || n > maxPrefetch {
		return fmt.Errorf("%d must be from 0 (off) to %d", n, maxPrefetch)
	}
	return nil
}
