// Command mload is the benchmark's request-rate client for small responses
// (manifests): --clients workers, each on its own keep-alive connection,
// send --method requests to --url back to back for --duration (or until
// --requests in all), and it prints one JSON object: requests per second,
// p50/p90/p99/max latency in milliseconds (microsecond resolution), and
// the count of answers that were not 200 or did not carry --expect-digest.
// With --window, the same figures also for each consecutive window of the
// run, by when each request was sent: how the latency moves while the
// server does something in the background (a count, an eviction).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

// Result is what mload prints.
type Result struct {
	URL      string  `json:"url"`
	Method   string  `json:"method"`
	Clients  int     `json:"clients"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	WallS    float64 `json:"wall_s"`
	RPS      float64 `json:"rps"`
	P50MS    float64 `json:"p50_ms"`
	P90MS    float64 `json:"p90_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
	// FirstError is one failure, for the log.
	FirstError string `json:"first_error,omitempty"`
	// Windows are the figures of each --window of the run, in order.
	Windows []Window `json:"windows,omitempty"`
}

// Window is the figures of the requests sent in [FromS, FromS+window).
type Window struct {
	FromS    float64 `json:"from_s"`
	Requests int     `json:"requests"`
	RPS      float64 `json:"rps"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// sample is one request: when it was sent (from the run's start) and how
// long it took.
type sample struct{ at, took time.Duration }

func main() {
	url := flag.String("url", "", "URL to request (required)")
	method := flag.String("method", http.MethodGet, "GET or HEAD")
	clients := flag.Int("clients", 1, "concurrent clients, one connection each")
	duration := flag.Duration("duration", 2*time.Second, "how long to send requests")
	maxRequests := flag.Int64("requests", 2_000_000, "bound on the requests sent in all")
	expect := flag.String("expect-digest", "", "Docker-Content-Digest every answer must carry")
	window := flag.Duration("window", 0, "also report each consecutive window of this length (0: none)")
	var hdrs headers
	flag.Var(&hdrs, "header", "request header, Name: value (repeatable)")
	flag.Parse()
	if *url == "" || *clients < 1 {
		flag.Usage()
		os.Exit(2)
	}
	// The bound on the whole run: the duration plus time for the last
	// requests to finish.
	ctx, cancel := context.WithTimeout(context.Background(), *duration+30*time.Second)
	defer cancel()

	var sent, failures atomic.Int64
	var firstErr atomic.Value
	lat := make([][]sample, *clients)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	var t0, deadline time.Time
	for i := range *clients {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			client := &http.Client{Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				DisableCompression:  true,
				MaxIdleConnsPerHost: 1,
			}}
			defer client.CloseIdleConnections()
			req, err := http.NewRequestWithContext(ctx, *method, *url, nil)
			if err != nil {
				panic(err)
			}
			for _, h := range hdrs {
				k, v, _ := strings.Cut(h, ":")
				req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			buf := make([]byte, 64<<10)
			ls := make([]sample, 0, 1<<16)
			ready.Done()
			<-start
			for time.Now().Before(deadline) && sent.Add(1) <= *maxRequests {
				at := time.Now()
				err := do(client, req, buf, *expect)
				ls = append(ls, sample{at.Sub(t0), time.Since(at)})
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if ctx.Err() != nil {
						break
					}
				}
			}
			lat[i] = ls
		}()
	}
	ready.Wait()
	t0 = time.Now()
	deadline = t0.Add(*duration)
	close(start)
	done.Wait()
	wall := time.Since(t0)

	samples := slices.Concat(lat...)
	all := took(samples)
	r := Result{URL: *url, Method: *method, Clients: *clients, Requests: len(all),
		Errors: int(failures.Load()), WallS: wall.Seconds()}
	r.RPS = float64(len(all)) / wall.Seconds()
	r.P50MS, r.P90MS, r.P99MS = pct(all, 0.50), pct(all, 0.90), pct(all, 0.99)
	if len(all) > 0 {
		r.MaxMS = ms(all[len(all)-1])
	}
	if *window > 0 {
		r.Windows = windows(samples, *window, wall)
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	json.NewEncoder(os.Stdout).Encode(r)
	if r.Errors > 0 || r.Requests == 0 {
		fmt.Fprintf(os.Stderr, "mload: %d of %d requests failed: %s\n", r.Errors, r.Requests, r.FirstError)
		os.Exit(1)
	}
}

// do sends req and reads the whole answer into buf.
func do(client *http.Client, req *http.Request, buf []byte, expect string) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	for {
		_, err := resp.Body.Read(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); expect != "" && got != expect {
		return fmt.Errorf("Docker-Content-Digest %q, want %q", got, expect)
	}
	return nil
}

// took returns the samples' latencies, sorted.
func took(samples []sample) []time.Duration {
	d := make([]time.Duration, len(samples))
	for i, s := range samples {
		d[i] = s.took
	}
	slices.Sort(d)
	return d
}

// windows splits samples by when they were sent into consecutive windows
// of length w over wall (the last one may be shorter, and is left out when
// it is under half a window: too few requests for a p99).
func windows(samples []sample, w, wall time.Duration) []Window {
	n := int(wall / w)
	if wall%w >= w/2 {
		n++
	}
	by := make([][]sample, n)
	for _, s := range samples {
		if i := int(s.at / w); i < n {
			by[i] = append(by[i], s)
		}
	}
	out := make([]Window, n)
	for i, ss := range by {
		d := took(ss)
		length := min(w, wall-time.Duration(i)*w)
		out[i] = Window{FromS: (time.Duration(i) * w).Seconds(), Requests: len(d),
			RPS: float64(len(d)) / length.Seconds(), P50MS: pct(d, 0.50), P99MS: pct(d, 0.99)}
		if len(d) > 0 {
			out[i].MaxMS = ms(d[len(d)-1])
		}
	}
	return out
}

// pct is the q-quantile of sorted (nearest rank), in milliseconds.
func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return ms(sorted[min(max(i, 0), len(sorted)-1)])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
