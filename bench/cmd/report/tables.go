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
		cases:   []string{"small-1c", "small-16c", "large-1c", "large-16c"},
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
}

var systemNames = map[string]string{
	"entrepot":            "Entrepot",
	"distribution":        "Distribution proxy",
	"nginx":               "nginx (sendfile)",
	"direct":              "upstream direct",
	"entrepot-empty":      "Entrepot, empty store",
	"entrepot-100k":       "Entrepot, 100k blobs",
	"entrepot-noprefetch": "Entrepot, --prefetch 0",
}

var systemShort = map[string]string{
	"distribution":   "DISTRIBUTION",
	"nginx":          "NGINX",
	"direct":         "DIRECT",
	"entrepot-empty": "EMPTY STORE",
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
