package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
)

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 64 << 10

// maxMessage caps an upstream's error message as kept in an Error.
const maxMessage = 512

// ErrStalled is wrapped by the error a response body returns when no byte
// arrived for the idle timeout.
var ErrStalled = errors.New("response body stalled")

// Error is an upstream failure: a status the cache did not expect, a
// transport failure, or a refusal because the upstream is rate-limited.
type Error struct {
	Upstream   string    // configured name
	Status     int       // HTTP status, 0 when no response arrived (connection refused, timeout)
	Code       string    // OCI error code from the body, e.g. "MANIFEST_UNKNOWN", "TOOMANYREQUESTS", if any
	Message    string    // OCI error message or a short description
	RetryAfter time.Time // set for 429: when the upstream may be contacted again
	Err        error     // underlying transport error, if any (Unwrap returns it)
}

var _ error = (*Error)(nil)

// Error reads like `upstream "docker.io": 503 Service Unavailable:
// UNAVAILABLE: try later` or `upstream "docker.io": dial tcp ...: connection
// refused`. It holds nothing the cache sent, so no credential.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("upstream " + strconv.Quote(e.Upstream))
	sep := func() { b.WriteString(": ") }
	if e.Status != 0 {
		sep()
		b.WriteString(strconv.Itoa(e.Status) + " " + http.StatusText(e.Status))
	}
	if e.Code != "" {
		sep()
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		sep()
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		sep()
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the registry errors of package oci: a 404 is oci.ErrNotFound
// and a 405 oci.ErrUnsupported.
func (e *Error) Is(target error) bool {
	switch target {
	case oci.ErrNotFound:
		return e.Status == http.StatusNotFound
	case oci.ErrUnsupported:
		return e.Status == http.StatusMethodNotAllowed
	}
	return false
}

// Public is the error as a client of the cache may read it: like Error,
// but a failure without an answer is said in words ("DNS lookup failed",
// "connection refused"), without the addresses, resolvers and ports of the
// cache's network, which Error keeps for the log.
func (e *Error) Public() string {
	if e.Err == nil {
		return e.Error()
	}
	public := *e
	public.Err = nil
	public.Message = joinMessage(e.Message, describe(e.Err))
	return public.Error()
}

// describe says in words what kind of transport failure err is.
func describe(err error) string {
	var dns *net.DNSError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.Is(err, ErrStalled):
		return "response body stalled"
	case errors.As(err, &dns):
		return "DNS lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &op) && op.Op == "dial":
		return "connection failed"
	case strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		return "TLS handshake failed"
	}
	return "connection failed"
}

// transportError wraps a failure where no usable response arrived. The
// *url.Error that net/http adds is peeled off: its text repeats the URL,
// which the Error's upstream name already identifies.
func (c *Client) transportError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &Error{Upstream: c.name, Err: err}
}

// statusError turns an unexpected response into an *Error, reading the body
// (capped) for an OCI error and closing it. A 429 also blocks the client.
func (c *Client) statusError(resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{Upstream: c.name, Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil && len(body.Errors) > 0 {
		e.Code = clean(body.Errors[0].Code)
		e.Message = c.redact(clean(body.Errors[0].Message))
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if e.Code == "" {
			e.Code = oci.CodeTooManyRequests
		}
		e.RetryAfter = c.block(resp.Header)
	}
	return e
}

// clean makes an upstream's string safe to put in an error or a log line:
// printable, valid UTF-8 and short.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage], "") + "..."
	}
	return s
}

// redact removes the configured credentials from s, in case a careless
// upstream or realm echoes what it received in its error message.
func (c *Client) redact(s string) string {
	if c.password == "" {
		return s
	}
	basic, _ := strings.CutPrefix(c.basicAuth(), "Basic ")
	return strings.NewReplacer(basic, "REDACTED", c.password.Reveal(), "REDACTED").Replace(s)
}

// joinMessage joins non-empty parts with ": ".
func joinMessage(parts ...string) string {
	var nonEmpty []string
	for _, p := range parts {
		if p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return strings.Join(nonEmpty, ": ")
}
