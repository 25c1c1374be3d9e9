// Command mload is the benchmark's request-rate client for small responses
// (manifests): --clients workers, each on its own keep-alive connection,
// send --method requests to --url back to back for --duration (or until
// --requests in all), and it prints one JSON object: requests per second,
// p50/p90/p99/max latency in milliseconds (microsecond resolution), and
// the count of answers that were not 200 or did not carry --expect-digest.
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
}

func main() {
	url := flag.String("url", "", "URL to request (required)")
	method := flag.String("method", http.MethodGet, "GET or HEAD")
	clients := flag.Int("clients", 1, "concurrent clients, one connection each")
	duration := flag.Duration("duration", 2*time.Second, "how long to send requests")
	maxRequests := flag.Int64("requests", 2_000_000, "bound on the requests sent in all")
	expect := flag.String("expect-digest", "", "Docker-Content-Digest every answer must carry")
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
	lat := make([][]time.Duration, *clients)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	var deadline time.Time
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
			ls := make([]time.Duration, 0, 1<<16)
			ready.Done()
			<-start
			for time.Now().Before(deadline) && sent.Add(1) <= *maxRequests {
				t0 := time.Now()
				err := do(client, req, buf, *expect)
				ls = append(ls, time.Since(t0))
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
	t0 := time.Now()
	deadline = t0.Add(*duration)
	close(start)
	done.Wait()
	wall := time.Since(t0)

	all := slices.Concat(lat...)
	slices.Sort(all)
	r := Result{URL: *url, Method: *method, Clients: *clients, Requests: len(all),
		Errors: int(failures.Load()), WallS: wall.Seconds()}
	r.RPS = float64(len(all)) / wall.Seconds()
	r.P50MS, r.P90MS, r.P99MS = pct(all, 0.50), pct(all, 0.90), pct(all, 0.99)
	if len(all) > 0 {
		r.MaxMS = ms(all[len(all)-1])
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

// pct is the q-quantile of sorted (nearest rank), in milliseconds.
func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return ms(sorted[min(max(i, 0), len(sorted)-1)])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
