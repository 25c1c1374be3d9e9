package main

import (
	"fmt"
	"math"
	"strings"
)

// target is a bound on a ratio (or, for a budget, on a median).
type target struct {
	op    string // ">=", "<=" or "<"
	value float64
}

func (t *target) met(v float64) bool {
	switch t.op {
	case ">=":
		return v >= t.value
	case "<=":
		return v <= t.value
	}
	return v < t.value
}

func (t *target) String() string {
	op := map[string]string{">=": "≥", "<=": "≤", "<": "<"}[t.op]
	return op + " " + fmtRatio(t.value)
}

// anchorSpec is one anchor of a table: its target, if any, per case, and
// whether its ratio goes on the chart.
type anchorSpec struct {
	system string
	target func(caseKey string) *target
	chart  func(caseKey string, t *target) bool
}

// tableSpec describes one table of results.md.
type tableSpec struct {
	title   string
	note    string
	short   string // the chart's label prefix
	section string
	metric  string
	unit    string
	higher  bool
	cases   []string
	subject string
	anchors []anchorSpec
	// budget is an absolute bound on the subject's median, per case;
	// budgetName says what it is for the chart ("5 MS").
	budget     func(caseKey string) *target
	budgetName string
	// ratioOf names the subject in the ratio column's header; empty is
	// "Entrepot".
	ratioOf string
}

func fixed(op string, v float64) func(string) *target {
	return func(string) *target { return &target{op, v} }
}

func whenCase(suffix, op string, v float64) func(string) *target {
	return func(c string) *target {
		if strings.HasSuffix(c, suffix) {
			return &target{op, v}
		}
		return nil
	}
}

func chartIfTarget(_ string, t *target) bool { return t != nil }
func chartAlways(string, *target) bool       { return true }
func chartNever(string, *target) bool        { return false }
func chartIf50c(c string, _ *target) bool    { return c == "small-50c" }

var costCases = []string{"small-1c", "small-50c", "large-50c"}

var warmCases = []string{"small-1c", "small-16c", "large-1c", "large-16c"}

var manifestCases = func() []string {
	var cs []string
	for _, m := range []string{"HEAD", "GET"} {
		for _, r := range []string{"tag", "digest"} {
			for _, c := range []string{"1c", "16c", "64c"} {
				cs = append(cs, m+"-"+r+"-"+c)
			}
		}
	}
	return append(cs, "GET-digest-64c-wrk", "GET-digest-64c-hey")
}()

// specs lists the tables in the order of bench/README.md.
var specs = []tableSpec{
	{
		title: "1. Warm blob throughput", short: "WARM",
		note:    "MB/s (10^6 bytes/s, all clients together) of GETs of a blob every system already holds. 1 client: the blob pulled again and again on one connection, 2 GiB in all, three times a round; 16 clients: one pull each, all at once. Targets ≥ 0.95× nginx, ≥ 1.0× Distribution.",
		section: "warm", metric: "mbps", unit: "MB/s", higher: true,
		cases:   warmCases,
		subject: "entrepot",
		anchors: []anchorSpec{
			{"nginx", fixed(">=", 0.95), chartIfTarget},
			{"distribution", fixed(">=", 1.0), chartIfTarget},
			{"direct", nil, chartNever},
		},
	},
	{
		title: "2a. Cold blob: time to first byte", short: "COLD TTFB",
		note:    "One client, a cache with an empty store (restarted on a new data directory every round).",
		section: "cold", metric: "ttfb_ms", unit: "ms", cases: []string{"small-1c"}, subject: "entrepot",
		anchors: []anchorSpec{{"direct", nil, chartAlways}, {"distribution", nil, chartNever}},
	},
	{
		title: "2b. Cold blob: total time", short: "COLD TOTAL",
		note:    "One client, empty store; target ≤ 1.15× direct.",
		section: "cold", metric: "total_s", unit: "s", cases: []string{"small-1c"}, subject: "entrepot",
		anchors: []anchorSpec{{"direct", fixed("<=", 1.15), chartAlways}, {"distribution", nil, chartAlways}},
	},
	{
		title: "2c. Cold blob, 20 concurrent clients: wall time", short: "COLD WALL",
		note:    "20 clients start at once on an empty store; wall time until the last has every byte.",
		section: "cold20", metric: "wall_s", unit: "s", cases: []string{"small-20c"}, subject: "entrepot",
		anchors: []anchorSpec{{"direct", nil, chartAlways}, {"distribution", nil, chartAlways}},
	},
	{
		title: "2d. Cold blob: upstream bytes as a multiple of the blob size", short: "COLD UPSTREAM BYTES",
		note:    "Blob bytes the counting front sent (GET blob). Target for Entrepot: 1.00× (one fetch, however many clients).",
		section: "cold20", metric: "upstream_x", unit: "× blob", cases: []string{"small-20c"}, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}, {"direct", nil, chartNever}},
		budget:  fixed("<=", 1.0), budgetName: "1 BLOB",
	},
	{
		title: "2e. Cold blob, one client: upstream bytes", short: "COLD 1C UPSTREAM BYTES",
		section: "cold", metric: "upstream_x", unit: "× blob", cases: []string{"small-1c"}, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}},
	},
	{
		title: "2f. Cold blob, 20 concurrent clients: median time to first byte", short: "COLD 20C TTFB",
		section: "cold20", metric: "ttfb_ms", unit: "ms", cases: []string{"small-20c"}, subject: "entrepot",
		anchors: []anchorSpec{{"direct", nil, chartNever}, {"distribution", nil, chartNever}},
	},
	{
		title: "2g. Cold blob, one client: CPU seconds of the cache", short: "COLD CACHE CPU",
		note:    "utime+stime of the cache process during the pull (/proc, 10 ms resolution): the work a cache adds to a transfer, for receiving, storing, hashing and sending every byte.",
		section: "cold", metric: "cache_cpu_s", unit: "s", cases: []string{"small-1c"}, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}},
	},
	{
		title: "2h. Cold blob, one client: CPU seconds of the upstream side", short: "COLD UPSTREAM CPU",
		note:    "utime+stime of the upstream registry and the counting front during the same pulls.",
		section: "cold", metric: "upstream_cpu_s", unit: "s", cases: []string{"small-1c"}, subject: "entrepot",
		anchors: []anchorSpec{{"direct", nil, chartNever}, {"distribution", nil, chartNever}},
	},
	{
		title: "2i. Cold blob, one client: CPU seconds of the client", short: "COLD CLIENT CPU",
		section: "cold", metric: "client_cpu_s", unit: "s", cases: []string{"small-1c"}, subject: "entrepot",
		anchors: []anchorSpec{{"direct", nil, chartNever}, {"distribution", nil, chartNever}},
	},
	{
		title: "3a. Manifests: requests per second", short: "MANIFEST RPS",
		note:    "Warm; each client one keep-alive connection, back to back (bench/cmd/mload unless marked wrk or hey). Target ≥ 2× Distribution at 64 clients. nginx serves the manifest by digest as a static file: the floor for a small answer on this machine.",
		section: "manifest", metric: "rps", unit: "req/s", higher: true, cases: manifestCases, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", whenCase("64c", ">=", 2), chartIfTarget}, {"nginx", nil, chartNever}},
	},
	{
		title: "3b. Manifests: p99 latency", short: "MANIFEST P99",
		note:    "Target for Entrepot: p99 < 5 ms at 64 clients.",
		section: "manifest", metric: "p99_ms", unit: "ms", cases: manifestCases, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}, {"nginx", nil, chartNever}},
		budget:  whenCase("64c", "<", 5), budgetName: "5 MS",
	},
	{
		title: "3c. Manifests: p50 latency", short: "MANIFEST P50",
		section: "manifest", metric: "p50_ms", unit: "ms", cases: manifestCases, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}, {"nginx", nil, chartNever}},
	},
	{
		title: "4a. crane pull --format oci of the 40-layer image", short: "CRANE",
		note:    "Cold: the cache restarted on an empty store; warm: the same pull again right after. Entrepot runs with its defaults (prefetch on, when the build has it) and again with --prefetch 0. Target: cold ≤ 1.0× direct.",
		section: "crane", metric: "seconds", unit: "s", cases: []string{"cold", "warm"}, subject: "entrepot",
		anchors: []anchorSpec{
			{"direct", whenCase("cold", "<=", 1.0), chartAlways},
			{"distribution", nil, chartAlways},
			{"entrepot-noprefetch", nil, chartNever},
		},
	},
	{
		title: "4b. crane pull, cold: upstream blob bytes as a multiple of the image's bytes", short: "CRANE UPSTREAM BYTES",
		section: "crane", metric: "upstream_x", unit: "× image", cases: []string{"cold"}, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}, {"entrepot-noprefetch", nil, chartNever}},
	},
	{
		title: "4c. crane pull, cold: CPU seconds of every process", short: "CRANE CPU",
		note:    "utime+stime of the upstream registry, the counting front, the cache (if any) and crane during the cold pull.",
		section: "crane", metric: "cpu_s", unit: "s", cases: []string{"cold"}, subject: "entrepot",
		anchors: []anchorSpec{{"direct", nil, chartNever}, {"distribution", nil, chartNever}},
	},
	{
		title: "4d. crane pull, cold: how busy the machine's cores were", short: "CRANE BUSY",
		note:    "The CPU seconds of 4c over (cores × wall time): 1.0 means every core was busy with the pull for its whole length.",
		section: "crane", metric: "busy", unit: "× cores", cases: []string{"cold"}, subject: "entrepot",
		anchors: []anchorSpec{{"direct", nil, chartNever}, {"distribution", nil, chartNever}},
	},
	{
		title: "5a. Cost: peak RSS during concurrent warm pulls", short: "PEAK RSS",
		note:    "VmHWM, reset at the start of the run (for nginx: master and workers summed). Target for Entrepot: < 100 MiB during 50 concurrent pulls of the smaller blob, and no growth with the blob's size or the number of clients beyond a fixed buffer per stream (compare the three cases).",
		section: "cost", metric: "peak_rss_mib", unit: "MiB", cases: costCases, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}, {"nginx", nil, chartNever}},
		budget:  fixed("<", 100), budgetName: "100 MIB",
	},
	{
		title: "5b. Cost: CPU seconds per GiB served", short: "CPU S/GIB",
		note:    "utime+stime of the server's processes over the run, per GiB the clients received.",
		section: "cost", metric: "cpu_s_per_gib", unit: "CPU s/GiB", cases: costCases, subject: "entrepot",
		anchors: []anchorSpec{{"nginx", nil, chartIf50c}, {"distribution", nil, chartIf50c}},
	},
	{
		title: "5c. Cost run: throughput", short: "COST MB/S",
		section: "cost", metric: "mbps", unit: "MB/s", higher: true, cases: costCases, subject: "entrepot",
		anchors: []anchorSpec{{"nginx", nil, chartNever}, {"distribution", nil, chartNever}},
	},
	{
		title: "6a. Scale: start-up time to the first 200 on /v2/", short: "SCALE",
		note:    "Entrepot on a store of 100,000 blobs and 10,000 tags vs an empty one (3 starts per round). Target ≤ 1.2× empty.",
		section: "scale", metric: "startup_ms", unit: "ms", cases: []string{"startup"}, subject: "entrepot-100k",
		anchors: []anchorSpec{{"entrepot-empty", fixed("<=", 1.2), chartAlways}},
	},
	{
		title: "6b. Scale: manifest-by-digest p50 latency", short: "SCALE P50",
		note:    "Target ≤ 1.2× empty.",
		section: "scale", metric: "p50_ms", unit: "ms", cases: []string{"manifest-1c", "manifest-16c"}, subject: "entrepot-100k",
		anchors: []anchorSpec{{"entrepot-empty", fixed("<=", 1.2), chartAlways}},
	},
	{
		title: "6c. Scale: manifest-by-digest p99 latency", short: "SCALE P99",
		note:    "Target ≤ 1.2× empty.",
		section: "scale", metric: "p99_ms", unit: "ms", cases: []string{"manifest-1c", "manifest-16c"}, subject: "entrepot-100k",
		anchors: []anchorSpec{{"entrepot-empty", fixed("<=", 1.2), chartAlways}},
	},
	{
		title: "6d. Scale: manifest-by-digest requests per second", short: "SCALE RPS",
		section: "scale", metric: "rps", unit: "req/s", higher: true, cases: []string{"manifest-1c", "manifest-16c"}, subject: "entrepot-100k",
		anchors: []anchorSpec{{"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6e. Bounded store: start-up time to the first 200 on /v2/", short: "BOUND START",
		note:    "The store of 6a with --max-size set: well above its size (bound on: the blobs are counted in the background from the start; nothing is evicted), and at half of it (evicting: the content is twice the bound, and eviction takes it to the low watermark right after the start; each round starts on a fresh copy of the store). 3 starts per round.",
		section: "scale", metric: "startup_ms", unit: "ms", cases: []string{"startup"}, subject: "entrepot-100k-bound",
		anchors: []anchorSpec{{"entrepot-100k", nil, chartAlways}, {"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6f. Evicting store: start-up time to the first 200 on /v2/", short: "EVICT START",
		section: "scale", metric: "startup_ms", unit: "ms", cases: []string{"startup"}, subject: "entrepot-100k-evict",
		anchors: []anchorSpec{{"entrepot-100k", nil, chartAlways}, {"entrepot-100k-bound", nil, chartNever}, {"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6g. Bounded store: manifest-by-digest p99 latency in the first seconds", short: "BOUND EARLY P99",
		note:    "One client, from the first 200 on (the third start of each round): over the whole run, then by window of the run, by when each request was sent.",
		section: "scale", metric: "p99_ms", unit: "ms", cases: earlyCases, subject: "entrepot-100k-bound",
		anchors: []anchorSpec{{"entrepot-100k", nil, chartIfWhole}, {"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6h. Evicting store: manifest-by-digest p99 latency in the first seconds", short: "EVICT EARLY P99",
		section: "scale", metric: "p99_ms", unit: "ms", cases: earlyCases, subject: "entrepot-100k-evict",
		anchors: []anchorSpec{{"entrepot-100k", nil, chartIfWhole}, {"entrepot-100k-bound", nil, chartNever}, {"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6i. Bounded store: manifest-by-digest p50 latency in the first seconds", short: "BOUND EARLY P50",
		section: "scale", metric: "p50_ms", unit: "ms", cases: earlyCases, subject: "entrepot-100k-bound",
		anchors: []anchorSpec{{"entrepot-100k", nil, chartNever}, {"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6j. Evicting store: manifest-by-digest p50 latency in the first seconds", short: "EVICT EARLY P50",
		section: "scale", metric: "p50_ms", unit: "ms", cases: earlyCases, subject: "entrepot-100k-evict",
		anchors: []anchorSpec{{"entrepot-100k", nil, chartNever}, {"entrepot-100k-bound", nil, chartNever}, {"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6k. Evicting store: manifest-by-digest requests per second in the first seconds", short: "EVICT EARLY RPS",
		section: "scale", metric: "rps", unit: "req/s", higher: true, cases: earlyCases, subject: "entrepot-100k-evict",
		anchors: []anchorSpec{{"entrepot-100k", nil, chartNever}, {"entrepot-100k-bound", nil, chartNever}, {"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6l. Evicting store: manifest-by-digest p99 latency once the eviction is over", short: "EVICT P99",
		note:    "The load runs of 6c, after the eviction's log line.",
		section: "scale", metric: "p99_ms", unit: "ms", cases: []string{"manifest-1c", "manifest-16c"}, subject: "entrepot-100k-evict",
		anchors: []anchorSpec{{"entrepot-100k", nil, chartNever}, {"entrepot-100k-bound", nil, chartNever}, {"entrepot-empty", nil, chartNever}},
	},
	{
		title: "6m. Eviction after the start: objects removed per second", short: "EVICT RATE",
		note:    "From the server's log lines (msg=evicted ... manifests=M blobs=N bytes=B took=D, one a sweep), over every sweep until the store is down to the low watermark: objects (files removed from the content store, M + N, as BenchmarkEvict counts them) per second, Σ(M + N) / ΣD. D runs from a sweep's start (its catalog read included) to its end; the count of the blobs before the first is not in it.",
		section: "evict", metric: "objects_per_s", unit: "objects/s", higher: true, cases: []string{"100k"}, subject: "entrepot-100k-evict",
	},
	{
		title: "6n. Eviction after the start: objects removed per second by the sweep that removed the most", short: "EVICT MAIN RATE",
		note:    "Content no pull time is known for stays through the first sweep that sees it, so after a restart a first sweep may remove little and spend its time reading the catalog.",
		section: "evict", metric: "main_objects_per_s", unit: "objects/s", higher: true, cases: []string{"100k"}, subject: "entrepot-100k-evict",
	},
	{
		title: "6o. Eviction after the start: bytes removed per second", short: "EVICT MIB/S",
		section: "evict", metric: "mib_per_s", unit: "MiB/s", higher: true, cases: []string{"100k"}, subject: "entrepot-100k-evict",
	},
	{
		title: "6p. Eviction after the start: its duration (D, over every sweep)", short: "EVICT TOOK",
		section: "evict", metric: "took_s", unit: "s", cases: []string{"100k"}, subject: "entrepot-100k-evict",
	},
	{
		title: "6q. Eviction after the start: from the start to the eviction's end", short: "EVICT DONE",
		note:    "From just before the process started to the time on the eviction's log line: the count, any sweep before the one that removes, and that sweep.",
		section: "evict", metric: "done_s", unit: "s", cases: []string{"100k"}, subject: "entrepot-100k-evict",
	},
	{
		title: "6r. Eviction after the start: objects removed", short: "EVICT OBJECTS",
		section: "evict", metric: "objects", unit: "objects", cases: []string{"100k"}, subject: "entrepot-100k-evict",
	},
	{
		title: "6s. Eviction after the start: blob bytes left, over the bound", short: "EVICT LEFT",
		note:    "Measured on disk after the server stopped; the low watermark is 0.85.",
		section: "evict", metric: "left_x", unit: "× bound", cases: []string{"100k"}, subject: "entrepot-100k-evict",
	},
	{
		title: "7a. TLS: warm blob throughput", short: "TLS",
		note:    "The load of table 1 (the same blobs, cases and client) against Entrepot and nginx over HTTPS, one self-signed certificate for both, HTTP/1.1 on both, and against the plain servers in the same rounds. Over TLS Entrepot copies every blob through user space (Go has no kernel TLS); the header above says in which mode nginx ran. The ratio column is Entrepot over TLS over each row; no target: the ratios show what TLS costs.",
		section: "tls", metric: "mbps", unit: "MB/s", higher: true, cases: warmCases, subject: "entrepot-tls",
		anchors: []anchorSpec{{"nginx-tls", nil, chartAlways}, {"entrepot", nil, chartNever}, {"nginx", nil, chartNever}},
	},
	{
		title: "7b. TLS: server CPU seconds per GiB served", short: "TLS CPU S/GIB",
		note:    "utime+stime of the server's processes (nginx: master and workers) during the runs of 7a, per GiB the clients received.",
		section: "tls", metric: "cpu_s_per_gib", unit: "CPU s/GiB", cases: warmCases, subject: "entrepot-tls",
		anchors: []anchorSpec{{"nginx-tls", nil, chartNever}, {"entrepot", nil, chartNever}, {"nginx", nil, chartNever}},
	},
	{
		title: "7c. TLS: client CPU seconds per GiB received", short: "TLS CLIENT CPU",
		note:    "utime+stime of the client (bench/cmd/fetch) during the same runs: decrypting costs the client too, on the same cores.",
		section: "tls", metric: "client_cpu_s_per_gib", unit: "CPU s/GiB", cases: warmCases, subject: "entrepot-tls",
		anchors: []anchorSpec{{"nginx-tls", nil, chartNever}, {"entrepot", nil, chartNever}, {"nginx", nil, chartNever}},
	},
	{
		title: "8a. WAN: cold pulls from a distant upstream", short: "WAN",
		note:    "The caches' upstream is a second counting front that plays a distant registry (the header above says how: a delay before every answer's headers, a cap on each body and one on all of them together); upstream direct is a client talking to that front. Every pull is cold: the cache restarted on an empty store, a new layout for crane, containerd restarted on an empty root for ctr. No target: the ratio to direct is what a cache in the middle costs or gains on a slow link.",
		section: "wan", metric: "seconds", unit: "s", cases: wanCases, subject: "entrepot",
		anchors: []anchorSpec{{"direct", nil, chartAlways}, {"distribution", nil, chartNever}, {"entrepot-warm", nil, chartNever}},
	},
	{
		title: "8b. WAN: the Distribution proxy's cold pulls", short: "WAN DISTRIBUTION",
		note:    "The pulls of 8a through the Distribution proxy, next to upstream direct; the ratio column is Distribution's median over direct's.",
		section: "wan", metric: "seconds", unit: "s", cases: wanCases, subject: "distribution", ratioOf: "Distribution",
		anchors: []anchorSpec{{"direct", nil, chartNever}},
	},
	{
		title: "8c. WAN: upstream blob bytes as a multiple of the bytes each pull needs", short: "WAN UPSTREAM BYTES",
		note:    "Blob bytes (GET blob, config blobs included) the shaped front sent during the pull, over the bytes of the blobs the pull needs.",
		section: "wan", metric: "upstream_x", unit: "× needed", cases: wanCases, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}, {"direct", nil, chartNever}},
	},
	{
		title: "8d. WAN: blob GETs the upstream answered", short: "WAN UPSTREAM GETS",
		note:    "GET blob requests at the shaped front during the pull: one per blob for a client that asks for each blob whole; more when a cache fetches a blob in ranged parts, each of which pays the front's delay and gets a bandwidth cap of its own.",
		section: "wan", metric: "upstream_blob_gets", unit: "requests", cases: wanCases, subject: "entrepot",
		anchors: []anchorSpec{{"distribution", nil, chartNever}, {"direct", nil, chartNever}},
	},
	wanFloorSpec,
	wanFloorRequestsSpec,
}

// earlyCases are the scale section's first seconds after a start: the
// whole run, then its windows by their start in seconds (bench/scale.sh
// records those the run has).
var earlyCases = func() []string {
	cs := []string{"early-1c"}
	for at := 0; at < 600; at += 5 {
		cs = append(cs, fmt.Sprintf("early-1c-at%d", at))
	}
	return cs
}()

func chartIfWhole(c string, _ *target) bool { return c == "early-1c" }

var systemNames = map[string]string{
	"entrepot":            "Entrepot",
	"distribution":        "Distribution proxy",
	"nginx":               "nginx (sendfile)",
	"direct":              "upstream direct",
	"entrepot-empty":      "Entrepot, empty store",
	"entrepot-100k":       "Entrepot, 100k blobs",
	"entrepot-100k-bound": "Entrepot, 100k blobs, bound on",
	"entrepot-100k-evict": "Entrepot, 100k blobs, evicting",
	"entrepot-noprefetch": "Entrepot, --prefetch 0",
	"entrepot-warm":       "Entrepot, warm (client floor)",
	"entrepot-tls":        "Entrepot, TLS",
	"nginx-tls":           "nginx, TLS",
}

var systemShort = map[string]string{
	"distribution":   "DISTRIBUTION",
	"nginx":          "NGINX",
	"direct":         "DIRECT",
	"entrepot-empty": "EMPTY STORE",
	"entrepot-100k":  "NO BOUND",
	"nginx-tls":      "NGINX TLS",
}

func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a == 0:
		return "0"
	}
	return fmt.Sprintf("%.3f", v)
}

func fmtRatio(v float64) string {
	if math.Abs(v) < 0.1 {
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func sizeLabel(bytes float64) string {
	if b := int64(bytes); b > 0 && b%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", b>>30)
	}
	return fmt.Sprintf("%d MiB", int64(bytes)>>20)
}
