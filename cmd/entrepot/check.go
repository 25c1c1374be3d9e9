package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/upstream"
)

const checkHelp = `usage: entrepot check [--timeout DURATION] [--json] [CONFIG.yaml] [serve's flags]
Validates the configuration as "entrepot serve" reads it, from the same
flags, with the same errors, then checks every upstream at once and prints
a table: whether it answers GET /v2/, its TLS version and certificate
expiry, whether authentication works (a bearer token for a pull, or basic
auth; with the configured credentials, else anonymously), and its
rate-limit budget. On Docker Hub a HEAD for library/alpine:latest reads
the budget and spends none of it; other upstreams get no manifest request.
Nothing is retried.
  --timeout DURATION  bound on each upstream's check (default 10s)
  --json              print JSON rather than a table (default false)
  --config FILE       the configuration file; --upstream NAME=URL and the
                      other flags of "entrepot serve" are taken too
STATUS is ok, unreachable, tls-error, auth-failed, rate-limited, or error
(an answer that is not a registry's, such as a 5xx). rate-limited is only
a warning: the cache serves what it holds meanwhile, and the upstream
answers again when its window renews.
Exit status: 0 when every upstream is ok or rate-limited, 1 when one is
not, 2 for a wrong command line or configuration.`

// defaultCheckTimeout bounds each upstream's check: enough for the
// transport's own timeouts (5s to connect, 8s for the headers) to report
// first.
const defaultCheckTimeout = 10 * time.Second

// upstreamCheck is one upstream's row, as the table and --json show it.
type upstreamCheck struct {
	Upstream string      `json:"upstream"`
	URL      string      `json:"url"`
	Status   string      `json:"status"`
	TLS      *checkTLS   `json:"tls,omitempty"`
	Auth     string      `json:"auth,omitempty"`
	Budget   *checkQuota `json:"budget,omitempty"`
	Detail   string      `json:"detail,omitempty"`
	usable   bool
}

type checkTLS struct {
	Version string    `json:"version"`
	Expires time.Time `json:"expires"`
}

type checkQuota struct {
	Limit         int64 `json:"limit"`
	Remaining     int64 `json:"remaining"`
	WindowSeconds int64 `json:"window_seconds,omitempty"`
}

// runCheck runs `entrepot check` and returns the exit code: 2 for a wrong
// command line or configuration, 1 when an upstream is unusable.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := fs.Duration("timeout", defaultCheckTimeout, "bound on each upstream's check")
	asJSON := fs.Bool("json", false, "print JSON")
	// Serve's flags and the arguments go to config.Parse as they came, so
	// that the configuration and every error are serve's own.
	var serveArgs []string
	for _, sf := range config.ServeFlags() {
		forward := func(s string) error {
			serveArgs = append(serveArgs, "--"+sf.Name+"="+s)
			return nil
		}
		if sf.Arg == "" { // a bool flag
			fs.BoolFunc(sf.Name, sf.Usage, forward)
		} else {
			fs.Func(sf.Name, sf.Usage, forward)
		}
	}
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(stdout, checkHelp)
				return 0
			}
			// As serve says it: the flags are serve's, but two.
			fmt.Fprintf(stderr, "entrepot check: %v\n", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest, args = append(rest, fs.Arg(0)), fs.Args()[1:]
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "entrepot check: --timeout %s: must be positive\n", *timeout)
		return 2
	}
	cfg, err := config.Parse(append(serveArgs, rest...), os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		// Only an argument after "--" can get here.
		fmt.Fprintln(stdout, checkHelp)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "entrepot check: %v\n", err)
		return 2
	}

	ctx, stop := notifyContext(context.Background())
	defer stop()
	rows := checkUpstreams(ctx, cfg.Upstreams, *timeout)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			fmt.Fprintf(stderr, "entrepot check: %v\n", err)
			return 1
		}
	} else {
		writeCheckTable(stdout, rows)
	}
	var unusable []string
	for _, r := range rows {
		if !r.usable {
			unusable = append(unusable, r.Upstream)
		}
	}
	if len(unusable) > 0 {
		fmt.Fprintf(stderr, "entrepot check: unusable: %s\n", strings.Join(unusable, ", "))
		return 1
	}
	return 0
}

// checkUpstreams probes every upstream at once, each within timeout, and
// returns their rows in the configuration's order.
func checkUpstreams(ctx context.Context, ups []config.Upstream, timeout time.Duration) []upstreamCheck {
	rows := make([]upstreamCheck, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Go(func() {
			// The table says all the client would log.
			c := upstream.New(u, nil, nil)
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			rows[i] = checkRow(u, c.Probe(pctx, ""))
		})
	}
	wg.Wait()
	return rows
}

func checkRow(u config.Upstream, r upstream.ProbeResult) upstreamCheck {
	row := upstreamCheck{Upstream: u.Name, URL: u.URL.Redacted(), Status: string(r.State), Auth: r.Auth, usable: r.Usable()}
	if r.TLS != nil {
		row.TLS = &checkTLS{Version: r.TLS.Version, Expires: r.TLS.Expires.UTC()}
	}
	if b := r.Budget; !b.Seen.IsZero() {
		row.Budget = &checkQuota{Limit: b.Limit, Remaining: b.Remaining, WindowSeconds: int64(b.Window / time.Second)}
	}
	if r.Err != nil {
		// The row names the upstream already.
		row.Detail = strings.TrimPrefix(r.Err.Error(), fmt.Sprintf("upstream %q: ", u.Name))
	}
	return row
}

// writeCheckTable writes rows as a table, "-" for what is not known.
func writeCheckTable(w io.Writer, rows []upstreamCheck) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tURL\tSTATUS\tTLS\tAUTH\tBUDGET\tDETAIL")
	for _, r := range rows {
		tlsCol := "-"
		switch {
		case r.TLS != nil:
			tlsCol = r.TLS.Version + ", expires " + r.TLS.Expires.Format(time.DateOnly)
		case strings.HasPrefix(r.URL, "http://"):
			tlsCol = "plain http"
		}
		budget := "-"
		if q := r.Budget; q != nil {
			budget = fmt.Sprintf("%d/%d", q.Remaining, q.Limit)
			if q.WindowSeconds > 0 {
				budget += " per " + formatWindow(time.Duration(q.WindowSeconds)*time.Second)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Upstream, r.URL, r.Status, tlsCol, orDash(r.Auth), budget, orDash(r.Detail))
	}
	tw.Flush()
}

// formatWindow writes a rate-limit window as people say it: 6h, 30m, 90s.
func formatWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
