// Command waitready polls a URL until it answers 200 and prints the
// milliseconds from --since-ns (a Unix time in nanoseconds, taken just
// before the server was started; default: when waitready started) to that
// first 200. It exits non-zero after --timeout, or as soon as --pid (the
// server) has died. An https URL is verified against the authorities of
// --ca when given.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "", "URL to poll (required)")
	sinceNS := flag.Int64("since-ns", 0, "start of the measured interval, Unix ns (default: now)")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	interval := flag.Duration("interval", time.Millisecond, "pause between attempts")
	pid := flag.Int("pid", 0, "fail early when this process is gone")
	caFile := flag.String("ca", "", "PEM `FILE` of the authorities to trust for https (default: the system's)")
	flag.Parse()
	if *url == "" {
		flag.Usage()
		os.Exit(2)
	}
	var tlsConfig *tls.Config
	if *caFile != "" {
		b, err := os.ReadFile(*caFile)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(b) {
			fmt.Fprintf(os.Stderr, "waitready: --ca %s: no PEM certificate read (%v)\n", *caFile, err)
			os.Exit(2)
		}
		tlsConfig = &tls.Config{RootCAs: pool}
	}
	since := time.Now()
	if *sinceNS > 0 {
		since = time.Unix(0, *sinceNS)
	}
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: tlsConfig},
	}
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(*url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Printf("%.3f\n", float64(time.Since(since).Microseconds())/1000)
				return
			}
		}
		if *pid > 0 && syscall.Kill(*pid, 0) != nil {
			fmt.Fprintf(os.Stderr, "waitready: process %d is gone\n", *pid)
			os.Exit(1)
		}
		time.Sleep(*interval)
	}
	fmt.Fprintf(os.Stderr, "waitready: %s: no 200 after %s\n", *url, *timeout)
	os.Exit(1)
}
