package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startPlain starts entrepot serve with an upstream that refuses every
// connection and returns the address it listens on.
func startPlain(t *testing.T, bin string) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--admin-listen", "127.0.0.1:0", "--data", t.TempDir(), "--upstream", "docker.io=http://127.0.0.1:1")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHTTP(t, "http://"+addr+"/healthz")
	return addr
}

// Hundreds of clients that send their headers a byte a second hold a
// connection each, but no more than the server's 10 s header timeout:
// the server closes them without an answer, and answers everybody else
// all along.
func TestHardeningSlowLoris(t *testing.T) {
	const conns = 300
	addr := startPlain(t, build(t))

	type closed struct {
		n   int // bytes the server sent
		err error
		at  time.Duration
	}
	start := time.Now()
	done := make(chan closed, conns)
	slow := make([]net.Conn, 0, conns)
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /v2/ HTTP/1.1\r\nHost: entrepot\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
		go func() {
			n, err := io.Copy(io.Discard, c) // until the server closes it
			done <- closed{int(n), err, time.Since(start)}
		}()
	}

	// A byte a second on each, until all are closed.
	stopDrip := make(chan struct{})
	dripped := make(chan struct{})
	go func() {
		defer close(dripped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopDrip:
				return
			case <-tick.C:
				for _, c := range slow {
					c.Write([]byte("a")) // fails once the server closed it
				}
			}
		}
	}()

	// Meanwhile the others are answered.
	stopProbe := make(chan struct{})
	var mu sync.Mutex // protects probes and failures
	var probes int
	var failures []string
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
		defer client.CloseIdleConnections()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, path := range []string{"/healthz", "/v2/"} {
				resp, err := client.Get("http://" + addr + path)
				mu.Lock()
				probes++
				switch {
				case err != nil:
					failures = append(failures, path+": "+err.Error())
				case resp.StatusCode != http.StatusOK:
					failures = append(failures, path+": "+resp.Status)
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			select {
			case <-stopProbe:
				return
			case <-tick.C:
			}
		}
	}()

	deadline := time.After(25 * time.Second)
	for i := range conns {
		select {
		case c := <-done:
			if c.n != 0 {
				t.Errorf("a slow client got %d bytes of answer", c.n)
			}
			if c.err != nil && !errors.Is(c.err, syscall.ECONNRESET) { // closed: EOF or reset
				t.Errorf("a slow client: %v", c.err)
			}
			if c.at < 5*time.Second {
				t.Errorf("a slow client was closed after %s, before the header timeout", c.at)
			}
		case <-deadline:
			t.Fatalf("%d of %d slow clients still connected after 25 s", conns-i, conns)
		}
	}
	close(stopDrip)
	close(stopProbe)
	<-dripped
	<-probed

	mu.Lock()
	defer mu.Unlock()
	if probes < 20 {
		t.Errorf("only %d requests answered while the slow clients were connected", probes)
	}
	for _, f := range failures {
		t.Errorf("while slow clients were connected: %s", f)
	}
}

// Oversized headers and URLs are refused in a few words, without the
// input, and error answers quote at most a bounded part of what was sent;
// the server stays healthy.
func TestHardeningOversizedRequests(t *testing.T) {
	addr := startPlain(t, build(t))
	const marker = "zq"
	long := func(n int) string { return strings.Repeat(marker, n/2) }

	for _, tc := range []struct {
		name    string
		status  int
		request string
	}{
		{"100 KiB header", http.StatusRequestHeaderFieldsTooLarge,
			"GET /v2/ HTTP/1.1\r\nHost: entrepot\r\nX-Big: " + long(100<<10) + "\r\n\r\n"},
		{"many headers", http.StatusRequestHeaderFieldsTooLarge,
			"GET /v2/ HTTP/1.1\r\nHost: entrepot\r\n" + strings.Repeat("X-Many: "+long(100)+"\r\n", 1000) + "\r\n"},
		{"70 KiB URL", http.StatusRequestHeaderFieldsTooLarge,
			"GET /v2/library/" + long(70<<10) + "/manifests/latest HTTP/1.1\r\nHost: entrepot\r\n\r\n"},
		{"10 KiB tag", http.StatusBadRequest,
			"GET /v2/library/alpine/manifests/" + long(10<<10) + " HTTP/1.1\r\nHost: entrepot\r\n\r\n"},
		{"10 KiB repository", http.StatusBadRequest,
			"GET /v2/library/" + long(10<<10) + "/manifests/latest HTTP/1.1\r\nHost: entrepot\r\n\r\n"},
		{"10 KiB digest", http.StatusBadRequest,
			"GET /v2/library/alpine/blobs/sha256:" + long(10<<10) + " HTTP/1.1\r\nHost: entrepot\r\n\r\n"},
		{"10 KiB page size", http.StatusBadRequest,
			"GET /v2/library/alpine/tags/list?n=" + long(10<<10) + " HTTP/1.1\r\nHost: entrepot\r\n\r\n"},
		{"10 KiB referrers filter", http.StatusBadGateway,
			"GET /v2/library/alpine/referrers/sha256:" + strings.Repeat("a", 64) + "?artifactType=" + long(10<<10) + " HTTP/1.1\r\nHost: entrepot\r\n\r\n"},
		{"10 KiB Accept", http.StatusBadGateway,
			"GET /v2/library/alpine/manifests/latest HTTP/1.1\r\nHost: entrepot\r\nAccept: " + long(10<<10) + "\r\n\r\n"},
		{"10 KiB upstream prefix", http.StatusNotFound,
			"GET /v2/" + long(10<<10) + ".example/library/alpine/manifests/latest HTTP/1.1\r\nHost: entrepot\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := roundTrip(t, addr, tc.request)
			if status != tc.status {
				t.Errorf("status %d, want %d; body %.200q", status, tc.status, body)
			}
			if len(body) > 2<<10 {
				t.Errorf("a body of %d bytes: %.200q...", len(body), body)
			}
			if strings.Contains(body, long(1<<10)) {
				t.Errorf("the body echoes 1 KiB of the input: %.200q...", body)
			}
		})
	}

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz after: %v %v", resp, err)
	}
	resp.Body.Close()
}

// roundTrip sends request on a connection of its own and returns the
// answer's status and body. It writes while it reads: a server may answer
// and close before it read the whole request.
func roundTrip(t *testing.T, addr, request string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, request)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp.StatusCode, string(body)
}
