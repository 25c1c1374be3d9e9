// Command fetch is the benchmark's blob client: --clients concurrent
// clients, each on its own connection, GET --url and discard the body. It
// prints one JSON object: bytes, wall time, MB/s (10^6 bytes per second,
// all clients together), and each request's time to first body byte and
// total time. It exits non-zero when any request failed or came back short.
//
// An https URL is fetched over HTTP/1.1 too (as nginx speaks it without
// http2), trusting the authorities of --ca; the JSON says what the first
// answer's connection negotiated.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
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
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

// Result is what fetch prints.
type Result struct {
	URL      string    `json:"url"`
	Clients  int       `json:"clients"`
	Requests int       `json:"requests"`
	Errors   int       `json:"errors"`
	Bytes    int64     `json:"bytes"`
	WallS    float64   `json:"wall_s"`
	MBps     float64   `json:"mbps"`
	TTFBS    []float64 `json:"ttfb_s"`
	TotalS   []float64 `json:"total_s"`
	// TTFBMedianS and TotalMedianS summarize the lists above.
	TTFBMedianS  float64  `json:"ttfb_median_s"`
	TotalMedianS float64  `json:"total_median_s"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	// Conn is what the first answer came over: "HTTP/1.1", or
	// "HTTP/1.1 TLS 1.3 TLS_AES_128_GCM_SHA256".
	Conn string `json:"conn,omitempty"`
}

func main() {
	url := flag.String("url", "", "URL to GET (required)")
	clients := flag.Int("clients", 1, "concurrent clients, one connection each")
	perClient := flag.Int("requests", 1, "requests per client, one after the other")
	timeout := flag.Duration("timeout", 10*time.Minute, "bound on the whole run")
	want := flag.String("digest", "", "sha256:<hex> every body must hash to (costs CPU: for checks, not for timed runs)")
	caFile := flag.String("ca", "", "PEM `FILE` of the authorities to trust for https (default: the system's)")
	var hdrs headers
	flag.Var(&hdrs, "header", "request header, Name: value (repeatable)")
	flag.Parse()
	if *url == "" || *clients < 1 || *perClient < 1 {
		flag.Usage()
		os.Exit(2)
	}
	tlsConfig, err := clientTLS(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	type sample struct {
		ttfb, total time.Duration
		n           int64
		conn        string
		err         error
	}
	samples := make([][]sample, *clients)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
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
				TLSClientConfig:     tlsConfig,
				// HTTP/1.1 over TLS as well: what TLS costs,
				// not what HTTP/2's framing does.
				TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
			}}
			defer client.CloseIdleConnections()
			buf := make([]byte, 1<<20)
			ready.Done()
			<-start
			for range *perClient {
				t0 := time.Now()
				ttfb, n, conn, err := get(ctx, client, *url, hdrs, buf, *want)
				samples[i] = append(samples[i], sample{ttfb, time.Since(t0), n, conn, err})
			}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	wall := time.Since(t0)

	r := Result{URL: *url, Clients: *clients, WallS: wall.Seconds()}
	for _, ss := range samples {
		for _, s := range ss {
			r.Requests++
			r.Bytes += s.n
			if r.Conn == "" {
				r.Conn = s.conn
			}
			if s.err != nil {
				r.Errors++
				if len(r.ErrorSamples) < 5 {
					r.ErrorSamples = append(r.ErrorSamples, s.err.Error())
				}
				continue
			}
			r.TTFBS = append(r.TTFBS, s.ttfb.Seconds())
			r.TotalS = append(r.TotalS, s.total.Seconds())
		}
	}
	r.MBps = float64(r.Bytes) / wall.Seconds() / 1e6
	r.TTFBMedianS, r.TotalMedianS = median(r.TTFBS), median(r.TotalS)
	json.NewEncoder(os.Stdout).Encode(r)
	if r.Errors > 0 {
		fmt.Fprintf(os.Stderr, "fetch: %d of %d requests failed: %v\n", r.Errors, r.Requests, r.ErrorSamples)
		os.Exit(1)
	}
}

// get GETs url, reads the body into buf until EOF, and returns the time to
// the first body byte, the bytes read and what the answer came over (see
// Result.Conn). A status other than 200 or a body shorter than its
// Content-Length, or one that does not hash to want (when set), is an
// error.
func get(ctx context.Context, client *http.Client, url string, hdrs headers, buf []byte, want string) (time.Duration, int64, string, error) {
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, "", err
	}
	for _, h := range hdrs {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	conn := connOf(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, 0, conn, fmt.Errorf("status %s", resp.Status)
	}
	var ttfb time.Duration
	var n int64
	h := sha256.New()
	for {
		m, err := resp.Body.Read(buf)
		if m > 0 && n == 0 {
			ttfb = time.Since(t0)
		}
		if want != "" {
			h.Write(buf[:m])
		}
		n += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ttfb, n, conn, err
		}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return ttfb, n, conn, fmt.Errorf("short body: %d of %d bytes", n, resp.ContentLength)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); want != "" && got != want {
		return ttfb, n, conn, fmt.Errorf("body hashes to %s, want %s", got, want)
	}
	return ttfb, n, conn, nil
}

// connOf describes what resp came over: its protocol, and the TLS version
// and cipher suite when there was TLS.
func connOf(resp *http.Response) string {
	if resp.TLS == nil {
		return resp.Proto
	}
	return fmt.Sprintf("%s %s %s", resp.Proto, tls.VersionName(resp.TLS.Version), tls.CipherSuiteName(resp.TLS.CipherSuite))
}

// clientTLS is the clients' TLS configuration: the authorities of caFile
// when given, the system's otherwise.
func clientTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
