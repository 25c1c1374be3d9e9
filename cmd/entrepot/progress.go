package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
)

// progressView shows a warm-up as it goes: on a terminal, one line per
// image, redrawn in place; elsewhere (a log, a pipe), one summary line per
// image as it ends.
type progressView struct {
	w      io.Writer
	tty    bool
	order  []string
	images map[string]cache.WarmProgress
	drawn  int // lines drawn last time, on a terminal
}

func newProgressView(w io.Writer, tty bool) *progressView {
	return &progressView{w: w, tty: tty, images: map[string]cache.WarmProgress{}}
}

func (v *progressView) update(p cache.WarmProgress) {
	if _, ok := v.images[p.Image]; !ok {
		v.order = append(v.order, p.Image)
	}
	v.images[p.Image] = p
	if !v.tty {
		if p.Done {
			fmt.Fprintln(v.w, progressLine(p))
		}
		return
	}
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA", v.drawn) // back to the first line
	}
	for _, img := range v.order {
		fmt.Fprintf(v.w, "\x1b[2K%s\n", progressLine(v.images[img]))
	}
	v.drawn = len(v.order)
}

// progressLine is one image's state in words.
func progressLine(p cache.WarmProgress) string {
	switch {
	case p.Error != "":
		return fmt.Sprintf("✗ %s: %s", p.Image, p.Error)
	case p.Done:
		return fmt.Sprintf("✓ %s  %s  %s, %s, %s (fetched %s)", p.Image, short(p.Digest.String()),
			plural(p.Manifests, "manifest"), plural(p.LayersTotal, "blob"), config.FormatSize(p.BytesTotal), config.FormatSize(p.Fetched))
	case p.LayersTotal == 0:
		return fmt.Sprintf("… %s  %s", p.Image, plural(p.Manifests, "manifest"))
	}
	return fmt.Sprintf("… %s  %s, blobs %d/%d, %s/%s", p.Image, plural(p.Manifests, "manifest"), p.Layers, p.LayersTotal,
		config.FormatSize(p.Bytes), config.FormatSize(p.BytesTotal))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func (v *progressView) failed() int {
	n := 0
	for _, p := range v.images {
		if p.Error != "" {
			n++
		}
	}
	return n
}

func (v *progressView) count() int { return len(v.images) }

// short abbreviates a digest as sha256:0123456789ab.
func short(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

// printListing writes the cached repositories as a table.
func printListing(w io.Writer, repos []cache.Repository, now time.Time) {
	if len(repos) == 0 {
		fmt.Fprintln(w, "nothing cached")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tSIZE\tLAST PULLED\tSTATE")
	for _, r := range repos {
		name := r.Source + "/" + r.Repository
		for _, img := range slices.Concat(r.Tags, r.Untagged) {
			tag := img.Tag
			if tag == "" {
				tag = "<none>"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, tag, short(img.Digest.String()), config.FormatSize(img.Size), ago(img.LastPulled, now), state(img))
		}
	}
	tw.Flush()
}

func state(img cache.Image) string {
	var s []string
	switch {
	case !img.Held:
		s = append(s, "not held")
	case img.Missing > 0:
		s = append(s, fmt.Sprintf("partial (%d blobs not held)", img.Missing))
	}
	if img.Frozen {
		s = append(s, "frozen")
	} else if img.Pinned {
		s = append(s, "pinned")
	}
	if img.Base != "" {
		s = append(s, "base "+short(img.Base.String())) // derived from it
	}
	return strings.Join(s, ",")
}

// ago writes how long ago t was, roughly.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
