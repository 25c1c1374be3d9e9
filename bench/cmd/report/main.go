// Command report turns the benchmark's raw figures (raw.jsonl, one figure a
// line, written by bench/run.sh) into results.md (one Markdown table per
// measurement: median, min and max over the rounds, and Entrepot's ratio to
// each anchor with its target), results.json (the raw figures, the
// summaries and the ratios) and ratios.png (a bar chart of the ratios).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Figure is one raw figure.
type Figure struct {
	Section string  `json:"section"`
	Case    string  `json:"case"`
	System  string  `json:"system"`
	Round   int     `json:"round"`
	Metric  string  `json:"metric"`
	Value   float64 `json:"value"`
}

type key struct{ section, caseKey, metric, system string }

// Summary is the median, min and max of one system's figures for one case.
type Summary struct {
	Section string    `json:"section"`
	Case    string    `json:"case"`
	Metric  string    `json:"metric"`
	System  string    `json:"system"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	N       int       `json:"n"`
	Values  []float64 `json:"values"`
}

// Ratio is Entrepot's median over an anchor's (or over a fixed budget).
type Ratio struct {
	Table  string  `json:"table"`
	Case   string  `json:"case"`
	Metric string  `json:"metric"`
	Anchor string  `json:"anchor"`
	Value  float64 `json:"ratio"`
	Target string  `json:"target,omitempty"`
	// Met is nil when there is no target.
	Met   *bool  `json:"met,omitempty"`
	Label string `json:"label"`
	chart bool
	// targetValue and higher say how the target reads, for the chart.
	targetValue float64
}

func main() {
	raw := flag.String("raw", "", "raw.jsonl (required)")
	metaPath := flag.String("meta", "", "meta.json (required)")
	out := flag.String("out", "", "output folder (required)")
	flag.Parse()
	if *raw == "" || *metaPath == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	figs, err := readFigures(*raw)
	if err != nil {
		fail(err)
	}
	var meta map[string]any
	b, err := os.ReadFile(*metaPath)
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	if err != nil {
		fail(fmt.Errorf("meta: %w", err))
	}

	sums := summarize(figs)
	r := &report{meta: meta, sums: sums}
	md := r.markdown()
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(md), 0o644); err != nil {
		fail(err)
	}
	var list []Summary
	for _, s := range sums {
		list = append(list, *s)
	}
	slices.SortFunc(list, func(a, b Summary) int {
		return strings.Compare(a.Section+a.Case+a.Metric+a.System, b.Section+b.Case+b.Metric+b.System)
	})
	js, err := json.MarshalIndent(map[string]any{
		"meta": meta, "summaries": list, "ratios": r.ratios, "raw": figs,
	}, "", "  ")
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(filepath.Join(*out, "results.json"), append(js, '\n'), 0o644); err != nil {
		fail(err)
	}
	var bars []Ratio
	for _, x := range r.ratios {
		if x.chart {
			bars = append(bars, x)
		}
	}
	title := fmt.Sprintf("ENTREPOT / ANCHOR, MEDIANS OF %v ROUNDS, %v", meta["rounds"], meta["date"])
	if err := writeChart(filepath.Join(*out, "ratios.png"), title, bars); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

func readFigures(path string) ([]Figure, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var figs []Figure
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var fig Figure
		if err := json.Unmarshal(sc.Bytes(), &fig); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		figs = append(figs, fig)
	}
	return figs, sc.Err()
}

func summarize(figs []Figure) map[key]*Summary {
	out := map[key]*Summary{}
	for _, f := range figs {
		k := key{f.Section, f.Case, f.Metric, f.System}
		s := out[k]
		if s == nil {
			s = &Summary{Section: f.Section, Case: f.Case, Metric: f.Metric, System: f.System}
			out[k] = s
		}
		s.Values = append(s.Values, f.Value)
	}
	for _, s := range out {
		v := slices.Clone(s.Values)
		slices.Sort(v)
		s.N, s.Min, s.Max = len(v), v[0], v[len(v)-1]
		if len(v)%2 == 1 {
			s.Median = v[len(v)/2]
		} else {
			s.Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
	}
	return out
}
