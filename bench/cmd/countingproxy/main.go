// Command countingproxy is the benchmark's counting front: a reverse proxy
// in front of the upstream registry that counts requests and response body
// bytes per method and registry endpoint (base, manifest, blob, tags,
// upload, other), so the benchmark can tell how often and how much a cache
// asked its upstream.
//
//	GET  /_counts        the counts as JSON
//	POST /_counts/reset  zero them
//
// Every other request goes to --upstream.
//
// It can also play a distant registry (all off by default): --delay holds
// every response's headers back by a round trip, --rate caps each
// response body's bytes per second, and --total-rate caps all of them
// together (token buckets of 256 KiB, so the caps hold for short bodies
// too). The counts are of the bytes as shaped.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "base URL of the registry to proxy to (required)")
	delay := flag.Duration("delay", 0, "wait this long before sending each response's headers (0: none)")
	var perResponse, total byteRate
	flag.Var(&perResponse, "rate", "cap on each response body, bytes per second, such as 32MiB (0: none)")
	flag.Var(&total, "total-rate", "cap on all response bodies together, bytes per second (0: none)")
	flag.Parse()
	if *delay < 0 {
		log.Fatalf("countingproxy: --delay %v: must not be negative", *delay)
	}
	shape := newShaping(*delay, int64(perResponse), int64(total))
	target, err := url.Parse(*upstream)
	if *upstream == "" || err != nil {
		log.Fatalf("countingproxy: --upstream: a base URL is required (%v)", err)
	}
	c := &counter{counts: map[string]*count{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // keep the Host the client used, as a caching proxy would see it
		},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			WriteBufferSize:     256 << 10,
			ReadBufferSize:      256 << 10,
		},
		BufferPool: bufferPool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_counts", c.serveCounts)
	mux.HandleFunc("POST /_counts/reset", c.reset)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + endpoint(r.URL.Path)
		cw := &countingWriter{ResponseWriter: shape.wrap(r.Context(), w)}
		// Deferred: the proxy aborts a response whose body copy fails
		// (a client that closes a GET once it has what it wanted) by
		// panicking with http.ErrAbortHandler, and the bytes it sent
		// before that count too.
		defer func() { c.add(key, cw.n) }()
		proxy.ServeHTTP(cw, r)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("countingproxy: %v", err)
	}
	fmt.Printf("countingproxy listening on %s, upstream %s\n", ln.Addr(), target)
	if shape.on() {
		fmt.Printf("countingproxy shaping: delay %v, %d bytes/s per response, %d bytes/s in all (0: no cap)\n",
			*delay, int64(perResponse), int64(total))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("countingproxy: %v", err)
	}
}

// endpoint names the registry API endpoint of a path.
func endpoint(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "base"
	case strings.Contains(p, "/blobs/uploads"):
		return "upload"
	case strings.Contains(p, "/blobs/"):
		return "blob"
	case strings.Contains(p, "/manifests/"):
		return "manifest"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags"
	case strings.Contains(p, "/referrers/"):
		return "referrers"
	}
	return "other"
}

type count struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
}

type counter struct {
	mu     sync.Mutex // protects counts
	counts map[string]*count
}

func (c *counter) add(key string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.counts[key]
	if e == nil {
		e = &count{}
		c.counts[key] = e
	}
	e.Requests++
	e.Bytes += n
}

func (c *counter) serveCounts(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	out := struct {
		Endpoints map[string]count `json:"endpoints"`
		Requests  int64            `json:"requests"`
		Bytes     int64            `json:"bytes"`
	}{Endpoints: map[string]count{}}
	for k, v := range c.counts {
		out.Endpoints[k] = *v
		out.Requests += v.Requests
		out.Bytes += v.Bytes
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (c *counter) reset(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	c.counts = map[string]*count{}
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// countingWriter counts the body bytes written through it. Unwrap lets
// http.ResponseController reach the connection (flushes).
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool hands the proxy 256 KiB copy buffers.
type bufferPool struct{}

var pool = sync.Pool{New: func() any { return make([]byte, 256<<10) }}

func (bufferPool) Get() []byte  { return pool.Get().([]byte) }
func (bufferPool) Put(b []byte) { pool.Put(b) } //nolint:staticcheck // a slice header per Put is fine here
