package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/entrepot/entrepot/internal/admin"
	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/oci"
	"golang.org/x/term"
)

// defaultAdmin is where the admin API listens unless configured otherwise.
const defaultAdmin = "http://127.0.0.1:5001"

// client talks to a running server's admin API.
type client struct {
	base  string
	token string // ENTREPOT_ADMIN_TOKEN
	http  *http.Client
}

// errUsage: the command line was wrong; main prints the usage.
var errUsage = errors.New("usage")

// runClient runs one of the commands that talk to the admin API: ls, warm,
// freeze, unfreeze, purge. It returns the process's exit code.
func runClient(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	adminURL := fs.String("admin", defaultAdmin, "admin API `URL`")
	asJSON := fs.Bool("json", false, "print JSON (ls)")
	var platforms []string
	fs.Func("platform", "platform of an index to warm, as os/arch[/variant], repeatable (warm)", func(s string) error {
		platforms = append(platforms, s)
		return nil
	})
	// Flags may come after the arguments too: entrepot ls nginx --json.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(stdout, commandHelp[cmd])
				return 0
			}
			fmt.Fprintf(stderr, "entrepot %s: %v\n%s\n", cmd, err, commandHelp[cmd])
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest, args = append(rest, fs.Arg(0)), fs.Args()[1:]
	}
	c := &client{base: strings.TrimRight(*adminURL, "/"), token: os.Getenv("ENTREPOT_ADMIN_TOKEN"), http: &http.Client{}}
	if cmd == "ls" || cmd == "unfreeze" || cmd == "purge" {
		// Quick answers; a warm-up or a freeze takes as long as its
		// downloads.
		c.http.Timeout = 2 * time.Minute
	}
	var err error
	switch cmd {
	case "ls":
		err = c.ls(stdout, rest, *asJSON)
	case "warm":
		err = c.warm(stdout, rest, platforms)
	case "freeze", "unfreeze":
		err = c.tagOp(stdout, cmd, rest)
	case "purge":
		err = c.purge(stdout, rest)
	}
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "entrepot %s: wrong arguments\n%s\n", cmd, commandHelp[cmd])
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "entrepot %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// do sends a request to the admin API and decodes a JSON answer into out,
// or, for a stream, hands the body to it.
func (c *client) do(method, path string, in any, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, stop := signalContext()
	defer stop()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("--admin %q: %w", c.base, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("cannot reach the admin API at %s (is `entrepot serve` running?): %v", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e admin.Error
		json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("the admin API refused the request: %s; set ENTREPOT_ADMIN_TOKEN", e.Error)
		}
		return errors.New(e.Error)
	}
	if stream, ok := out.(func(io.Reader) error); ok {
		return stream(resp.Body)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *client) ls(w io.Writer, args []string, asJSON bool) error {
	if len(args) > 1 {
		return errUsage
	}
	path := "/api/v1/images"
	if len(args) == 1 {
		filter := args[0]
		if !strings.Contains(filter, "*") {
			ref, err := oci.ParseReference(filter)
			if err != nil {
				return err
			}
			if strings.HasPrefix(filter, config.DerivedName+"/") {
				filter = ref.Repository // derived/vault:1.14 names derived/vault
			} else {
				filter = ref.Name()
			}
		}
		path += "?repository=" + url.QueryEscape(filter)
	}
	var repos []cache.Repository
	if err := c.do(http.MethodGet, path, nil, &repos); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(repos)
	}
	printListing(w, repos, time.Now())
	return nil
}

func (c *client) tagOp(w io.Writer, cmd string, args []string) error {
	if len(args) != 1 {
		return errUsage
	}
	var res admin.Result
	if err := c.do(http.MethodPost, "/api/v1/"+cmd, admin.ImageRequest{Image: args[0]}, &res); err != nil {
		return err
	}
	done := map[string]string{"freeze": "frozen", "unfreeze": "unfrozen"}[cmd]
	fmt.Fprintf(w, "%s %s at %s\n", done, res.Image, res.Digest)
	return nil
}

func (c *client) purge(w io.Writer, args []string) error {
	if len(args) != 1 {
		return errUsage
	}
	var res admin.Result
	if err := c.do(http.MethodPost, "/api/v1/purge", admin.ImageRequest{Image: args[0]}, &res); err != nil {
		return err
	}
	r := res.Removed
	fmt.Fprintf(w, "purged %s: %s, %s, %s, %s\n", res.Image, plural(r.Tags, "tag"), plural(r.Manifests, "manifest"),
		plural(r.Blobs, "blob"), config.FormatSize(r.Bytes))
	return nil
}

func (c *client) warm(w io.Writer, args []string, platforms []string) error {
	if len(args) == 0 {
		return errUsage
	}
	req := admin.WarmRequest{}
	for _, a := range args {
		req.Images = append(req.Images, admin.Image{Image: a, Platforms: platforms})
	}
	f, isFile := w.(*os.File)
	view := newProgressView(w, isFile && term.IsTerminal(int(f.Fd())))
	err := c.do(http.MethodPost, "/api/v1/warm", req, func(body io.Reader) error {
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var p cache.WarmProgress
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				return fmt.Errorf("the admin API sent %q: %w", sc.Text(), err)
			}
			view.update(p)
		}
		return sc.Err()
	})
	if err != nil {
		return err
	}
	if n := view.failed(); n > 0 {
		return fmt.Errorf("%d of %d images failed", n, view.count())
	}
	return nil
}

// signalContext is cancelled by SIGINT, so that ^C ends a long warm-up's
// request (the server goes on with the fills under way).
func signalContext() (context.Context, context.CancelFunc) {
	return notifyContext(context.Background())
}
