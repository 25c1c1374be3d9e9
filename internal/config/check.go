package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
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

// leadingDays matches the days of a long duration: the 30d of 30d or 1d12h.
var leadingDays = regexp.MustCompile(`^([0-9]+)d`)

// parseLongDuration is parseDuration for spans counted in days, which
// time.ParseDuration has no unit for: 30d, 1d12h, and still 12h or 0.
func parseLongDuration(s string) (time.Duration, error) {
	if abs, negative := strings.CutPrefix(s, "-"); negative {
		if _, err := parseLongDuration(abs); err == nil {
			return 0, fmt.Errorf("%q must not be negative", s)
		}
		return 0, fmt.Errorf("%q is not a duration, e.g. 30d, 12h or 1d12h", s)
	}
	var days time.Duration
	rest := s
	if m := leadingDays.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("%q is too long", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, s[len(m[0]):]
		if rest == "" {
			return days, nil
		}
		if rest[0] == '+' || rest[0] == '-' {
			return 0, fmt.Errorf("%q is not a duration, e.g. 30d, 12h or 1d12h", s)
		}
	}
	d, err := time.ParseDuration(rest)
	switch {
	case err != nil:
		if _, convErr := strconv.ParseFloat(rest, 64); convErr == nil {
			return 0, fmt.Errorf("%q has no unit; use a unit, e.g. 30d or 12h", s)
		}
		return 0, fmt.Errorf("%q is not a duration, e.g. 30d, 12h or 1d12h", s)
	case d < 0:
		return 0, fmt.Errorf("%q must not be negative", s)
	case d > math.MaxInt64-days:
		return 0, fmt.Errorf("%q is too long", s)
	}
	return days + d, nil
}

// parseFraction parses a watermark: a percentage (95%) or a fraction
// (0.95), above 0 and at most 1.
func parseFraction(s string) (float64, error) {
	number, percent := strings.CutSuffix(strings.TrimSpace(s), "%")
	number = strings.TrimSpace(number)
	// Only digits and a point: strconv alone would also take a sign, an
	// exponent, hexadecimal, Inf and NaN.
	_, _, rest, ok := splitSize(number)
	v, err := strconv.ParseFloat(number, 64)
	if percent {
		v /= 100
	}
	if !ok || rest != "" || err != nil || v <= 0 || v > 1 {
		return 0, fmt.Errorf("%q must be a percentage or a fraction above 0 and at most 1, e.g. 95%% or 0.95", s)
	}
	return v, nil
}

// formatPercent writes a fraction the way watermarks are usually written:
// 0.85 is "85%".
func formatPercent(v float64) string {
	// Six significant digits hide the float error of 0.85*100.
	return strconv.FormatFloat(v*100, 'g', 6, 64) + "%"
}

// platform matches os/arch and os/arch/variant: linux/amd64, linux/arm64/v8.
var platform = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$`)

func checkPlatform(p string) error {
	if !platform.MatchString(p) {
		return fmt.Errorf("%q must be os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64/v8", p)
	}
	return nil
}

// checkWarmImage checks an image of the warm-up list: a reference whose
// registry is written out, since "nginx" read as docker.io/library/nginx
// is a guess the list should not need, and whose tag may be a pattern
// such as 1.27.*.
func checkWarmImage(image string) error {
	if image == "" {
		return errors.New("is required")
	}
	name, tag, digest := splitImage(image)
	// A star is not a tag character: check the tag on its own as if each
	// star were one, and the rest as a reference.
	ref := image
	if strings.Contains(tag, "*") {
		if !oci.ValidTag(strings.ReplaceAll(tag, "*", "x")) {
			return fmt.Errorf("%q has an invalid tag pattern %q", image, tag)
		}
		ref = name + digest
	}
	r, err := oci.ParseReference(ref)
	if host, _, nested := strings.Cut(name, "/"); nested && host == DerivedName {
		return err // a derived image: derived/<name>:<tag> (checkDerive checks it is one)
	} else if !nested || !oci.IsHost(host) {
		if err != nil {
			return fmt.Errorf("%q must start with a registry, e.g. docker.io/library/nginx:1.27", image)
		}
		// r is on Docker Hub, where a bare name is under library/.
		full := r.Name()
		if tag != "" {
			full += ":" + tag
		}
		return fmt.Errorf("%q must start with a registry, e.g. %s", image, full+digest)
	}
	return err
}

// splitImage splits a reference into its name, its tag (without the
// colon) and its digest (with the @), as oci.ParseReference does: the tag
// follows the last colon that is not a registry's port.
func splitImage(image string) (name, tag, digest string) {
	name = image
	if at := strings.IndexByte(name, '@'); at >= 0 {
		name, digest = name[:at], name[at:]
	}
	if colon := strings.LastIndexByte(name, ':'); colon >= 0 && !strings.Contains(name[colon:], "/") {
		name, tag = name[:colon], name[colon+1:]
	}
	return name, tag, digest
}

// checkLoopback accepts an address only this machine can reach: a
// loopback IP (127.0.0.1, any 127.x.y.z, ::1) or localhost. An empty
// host (":5001") is every interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && (host == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address; set admin.token_env or admin.token_file to listen on it", addr)
}

// parseFloor parses a rate-limit floor: a percentage of the limit (10%) or
// a number of requests (20; 0 is no floor).
func parseFloor(s string) (Floor, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "%") {
		v, err := parseFraction(s)
		if err != nil || v >= 1 {
			return Floor{}, fmt.Errorf("%q must be a percentage below 100%% or a number of requests, e.g. 10%% or 20", s)
		}
		return Floor{Fraction: v}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strings.HasPrefix(s, "+") {
		return Floor{}, fmt.Errorf("%q must be a percentage below 100%% or a number of requests, e.g. 10%% or 20", s)
	}
	return Floor{Count: n}, nil
}

// parseLevel parses a log level: debug, info, warn or error.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not a log level: want debug, info, warn or error", s)
}

// checkLogFormat checks a log format: text or json.
func checkLogFormat(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("%q is not a log format: want text or json", s)
	}
	return nil
}
