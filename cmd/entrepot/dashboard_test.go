package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// browser returns the path of a Chromium to drive, skipping the test when
// there is none, unless ENTREPOT_REQUIRE_BROWSER is set (as in CI).
func browser(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("ENTREPOT_REQUIRE_BROWSER") != "" {
		t.Fatal("no chromium on PATH (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium); ENTREPOT_REQUIRE_BROWSER makes this a failure")
	return ""
}

// headless starts a headless Chromium that may reach only loopback
// addresses: everything else goes to a proxy that is not there. It
// records the page's console errors and uncaught exceptions.
func headless(t *testing.T, path string) (context.Context, func() []string) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in a container
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() }) // stops the browser's processes
	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s at %s:%d", ev.ExceptionDetails.Text, ev.ExceptionDetails.URL, ev.ExceptionDetails.LineNumber))
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}

// scrapeMetrics reads the admin listener's /metrics.
func scrapeMetrics(t *testing.T, admin string) map[string]*dto.MetricFamily {
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %v %v", resp, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// total sums a family's values over the series whose labels include
// those given (name, value pairs).
func total(families map[string]*dto.MetricFamily, name string, match ...string) float64 {
	var v float64
	f := families[name]
	if f == nil {
		return 0
	}
series:
	for _, m := range f.GetMetric() {
		l := labels(m)
		for i := 0; i+1 < len(match); i += 2 {
			if l[match[i]] != match[i+1] {
				continue series
			}
		}
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return v
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// expected is what the dashboard should show, figure by figure (keyed
// "upstream/figure", "" for the totals), as /metrics has it.
func expected(f map[string]*dto.MetricFamily) map[string]string {
	const req = "entrepot_requests_total"
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	ratio := func(match ...string) string {
		hits := 0.0
		for _, r := range []string{"hit", "revalidated", "joined", "stale"} {
			hits += total(f, req, append(match, "result", r)...)
		}
		misses := total(f, req, append(match, "result", "miss")...)
		if hits+misses == 0 {
			return ""
		}
		return num(hits / (hits + misses))
	}
	served, fetched := total(f, "entrepot_served_bytes_total"), total(f, "entrepot_upstream_bytes_total")
	want := map[string]string{
		"/hit-ratio":      ratio(),
		"/requests":       num(total(f, req)),
		"/served-bytes":   num(served),
		"/upstream-bytes": num(fetched),
		"/saved-bytes":    num(math.Max(0, served-fetched)),
		"/store-bytes":    num(total(f, "entrepot_store_bytes")),
		"/store-objects":  num(total(f, "entrepot_store_objects")),
		"/store-max":      num(total(f, "entrepot_store_max_bytes")),
	}
	const up = "docker.io"
	want[up+"/hit-ratio"] = ratio("upstream", up)
	want[up+"/served-bytes"] = num(total(f, "entrepot_served_bytes_total", "upstream", up))
	want[up+"/upstream-bytes"] = num(total(f, "entrepot_upstream_bytes_total", "upstream", up))
	want[up+"/upstream-requests"] = num(total(f, "entrepot_upstream_requests_total", "upstream", up))
	want[up+"/budget-remaining"] = num(total(f, "entrepot_upstream_ratelimit_remaining", "upstream", up))
	want[up+"/budget-limit"] = num(total(f, "entrepot_upstream_ratelimit_limit", "upstream", up))
	return want
}

// figures reads every figure the page shows, with its raw value.
const figures = `JSON.stringify(Object.fromEntries([...document.querySelectorAll("[data-figure]")]
	.filter((e) => e.dataset.value !== undefined)
	.map((e) => [(e.closest("[data-upstream]")?.dataset.upstream || "") + "/" + e.dataset.figure, e.dataset.value])))`

// The dashboard, in a real headless Chromium, after a scripted set of real
// pulls: the page loads with no console error, needs the token, and shows
// the figures /metrics has; its lists name the pulled repository, the
// failed request and the upstream's budget. A screenshot is kept in the
// test's artifact directory (go test -artifacts).
func TestDashboardInBrowser(t *testing.T) {
	chromium := browser(t)
	bin := build(t)
	o := &origin{Server: httptest.NewServer(&rateLimited{Handler: ggcr.New(ggcr.Logger(stdlog.New(io.Discard, "", 0))), limit: 100, remaining: 77})}
	t.Cleanup(o.Close)
	o.push(t, 2)
	s := startServer(t, bin, t.TempDir(), o.URL, "prefetch: 0\nstorage:\n  max_size: 1GiB\n"+
		"derive:\n  - {name: app, from: docker.io/library/app:img0, tag: v1, env: {MODE: x}}\n")

	for _, tag := range []string{"img0", "img0", "img1"} {
		if err := s.pull(tag); err != nil {
			t.Fatalf("pull %s: %v", tag, err)
		}
	}
	derived, err := remote.Image(mustParse(t, s.addr+"/derived/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(derived); err != nil {
		t.Fatalf("derived/app:v1: %v", err)
	}
	if err := s.pull("nope"); err == nil {
		t.Fatal("pull of a tag the origin lacks succeeded")
	}

	ctx, problems := headless(t, chromium)
	page := "http://" + s.admin + "/"
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible("#login")); err != nil {
		t.Fatalf("the page without a token: %v", err)
	}
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("main").hidden`)); err != nil || !hidden {
		t.Fatal("the page without a token shows its figures")
	}
	expected401 := len(problems()) // the browser logs the refused request

	var got map[string]string
	var want map[string]string
	deadline := time.Now().Add(30 * time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(page+"#token="+testToken), chromedp.WaitVisible("#main")); err != nil {
		t.Fatalf("the page with its token: %v", err)
	}
	for {
		if err := chromedp.Do(ctx, chromedp.WaitReady("body[data-updated]")); err != nil {
			t.Fatal(err)
		}
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](figures))
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]string{}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		want = expected(scrapeMetrics(t, s.admin))
		if matches(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond) // the page polls every 2 s
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: the page shows %q, /metrics says %q", k, got[k], v)
		}
	}
	if got["/requests"] == "0" || got["/served-bytes"] == "0" || got["/store-bytes"] == "0" || got["docker.io/budget-limit"] != "100" {
		t.Errorf("figures left at zero after the pulls: %v", got)
	}

	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	top, errs, state := text("#top"), text("#errors"), text(`[data-upstream="docker.io"] [data-figure="state"]`)
	if d := text("#derived"); !strings.Contains(d, "derived/app:v1") || !strings.Contains(d, "docker.io/library/app:img0") {
		t.Errorf("derived images: %q; want derived/app:v1 with its base docker.io/library/app:img0", d)
	}
	hash, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(top, "docker.io/library/app") {
		t.Errorf("most pulled: %q; want docker.io/library/app", top)
	}
	if !strings.Contains(errs, "/v2/docker.io/library/app/manifests/nope") || !strings.Contains(errs, "404") {
		t.Errorf("recent errors: %q; want the failed pull of :nope", errs)
	}
	if state != "ok" {
		t.Errorf("upstream state %q; want ok", state)
	}
	if hash != "" {
		t.Errorf("the token stays in the address bar: %q", hash)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
	if p := problems()[expected401:]; len(p) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(p, "\n"))
	}
}

func matches(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// rateLimited adds Docker Hub's rate-limit headers to a registry's
// manifest answers, counting the GETs down.
type rateLimited struct {
	http.Handler
	mu               sync.Mutex // protects remaining
	limit, remaining int
}

func (h *rateLimited) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.URL.Path, "/manifests/") {
		h.mu.Lock()
		if r.Method == http.MethodGet && h.remaining > 0 {
			h.remaining--
		}
		remaining := h.remaining
		h.mu.Unlock()
		w.Header().Set("Ratelimit-Limit", fmt.Sprintf("%d;w=21600", h.limit))
		w.Header().Set("Ratelimit-Remaining", fmt.Sprintf("%d;w=21600", remaining))
	}
	h.Handler.ServeHTTP(w, r)
}
