package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// shapeBurst is the token buckets' depth, and shapeChunk the most one
// Write sends before it waits for tokens again. A deep bucket would let a
// short response through at loopback speed and make the cap a fiction; a
// chunk of a quarter of it keeps the pacing smooth (the proxy's copy
// buffer is 256 KiB).
const (
	shapeBurst = 256 << 10
	shapeChunk = 64 << 10
)

// shaping models a distant registry: every response waits delay before its
// headers go out (one round trip), and its body is paced by a bucket of its
// own (perResponse bytes/s) and by one all responses share (total bytes/s).
// A zero field is no shaping of that kind.
type shaping struct {
	delay       time.Duration
	perResponse int64
	total       *rate.Limiter // nil: no shared cap
}

func newShaping(delay time.Duration, perResponse, total int64) *shaping {
	s := &shaping{delay: delay, perResponse: perResponse}
	if total > 0 {
		s.total = rate.NewLimiter(rate.Limit(total), shapeBurst)
	}
	return s
}

func (s *shaping) on() bool { return s.delay > 0 || s.perResponse > 0 || s.total != nil }

// wrap returns w shaped for one response of the request whose context is
// ctx; w itself when there is nothing to shape.
func (s *shaping) wrap(ctx context.Context, w http.ResponseWriter) http.ResponseWriter {
	if !s.on() {
		return w
	}
	sw := &shapedWriter{ResponseWriter: w, ctx: ctx, s: s}
	if s.perResponse > 0 {
		sw.own = rate.NewLimiter(rate.Limit(s.perResponse), shapeBurst)
	}
	return sw
}

// shapedWriter delays a response's headers and paces its body. Every body
// byte goes through Write (httputil.ReverseProxy copies with Write only),
// so a 200, a 206 for a Range request and a redirect are shaped alike.
// Unwrap lets http.ResponseController reach the connection.
type shapedWriter struct {
	http.ResponseWriter
	ctx         context.Context
	s           *shaping
	own         *rate.Limiter // nil: no cap of this response's own
	wroteHeader bool
}

func (w *shapedWriter) WriteHeader(code int) {
	// 1xx answers are not the response: they pass at once, and the
	// final status still waits.
	if !w.wroteHeader && code >= 200 {
		w.wroteHeader = true
		w.wait()
	}
	w.ResponseWriter.WriteHeader(code)
}

// wait sleeps the delay, or until the client is gone.
func (w *shapedWriter) wait() {
	if w.s.delay <= 0 {
		return
	}
	t := time.NewTimer(w.s.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.ctx.Done():
	}
}

func (w *shapedWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), shapeChunk)
		if err := w.take(n); err != nil {
			return written, err
		}
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// take waits until n bytes may go out under both caps.
func (w *shapedWriter) take(n int) error {
	if w.own != nil {
		if err := w.own.WaitN(w.ctx, n); err != nil {
			return err
		}
	}
	if w.s.total != nil {
		if err := w.s.total.WaitN(w.ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (w *shapedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.ResponseWriter = (*shapedWriter)(nil)

// byteRate is a flag value in bytes per second: a whole number with an
// optional unit, KiB, MiB or GiB (powers of 1024), KB, MB or GB (of 1000),
// or B; "0" is no cap.
type byteRate int64

func (b *byteRate) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteRate) Set(v string) error {
	units := []struct {
		suffix string
		factor int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
	}
	num, factor := strings.TrimSpace(v), int64(1)
	for _, u := range units {
		if s, ok := strings.CutSuffix(num, u.suffix); ok {
			num, factor = strings.TrimSpace(s), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return fmt.Errorf("%q: want bytes per second, such as 32MiB, 500KB or 1048576", v)
	}
	*b = byteRate(n * factor)
	return nil
}
