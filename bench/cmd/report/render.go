package main

import (
	"fmt"
	"strconv"
	"strings"
)

type report struct {
	meta   map[string]any
	sums   map[key]*Summary
	ratios []Ratio
}

// caseLabel names a case for people: "256 MiB, 16 clients".
func (r *report) caseLabel(section, c string) string {
	clients := func(s string) string {
		n := strings.TrimSuffix(s, "c")
		if n == "1" {
			return "1 client"
		}
		return n + " clients"
	}
	size := func(which string) string {
		if b, ok := r.meta[which+"_blob_bytes"].(float64); ok {
			return sizeLabel(b)
		}
		return which
	}
	switch section {
	case "warm", "cold", "cold20", "cost", "tls":
		which, n, _ := strings.Cut(c, "-")
		return size(which) + ", " + clients(n)
	case "manifest":
		parts := strings.Split(c, "-")
		if len(parts) < 3 {
			return c
		}
		s := parts[0] + " by " + parts[1] + ", " + clients(parts[2])
		if len(parts) > 3 {
			s += " (" + parts[3] + ")"
		}
		return s
	case "scale":
		if c == "startup" {
			return "start-up"
		}
		parts := strings.Split(c, "-")
		if len(parts) < 2 {
			return c
		}
		s := "GET by digest, " + clients(parts[1])
		if parts[0] != "early" {
			return s
		}
		early, window := r.scaleTimes()
		if len(parts) < 3 {
			return s + ", the first " + early + " s"
		}
		from, err := strconv.Atoi(strings.TrimPrefix(parts[2], "at"))
		if err != nil || window == 0 {
			return s + ", " + parts[2]
		}
		return fmt.Sprintf("%s, %d–%d s", s, from, from+window)
	case "evict":
		return "100,000 blobs, to 85 % of half their bytes"
	case "wan":
		return r.wanCaseLabel(c)
	}
	return c
}

// scaleTimes are the length of the scale section's first-seconds run, as
// text, and of its windows, in seconds (0 when the meta has none).
func (r *report) scaleTimes() (string, int) {
	sc, _ := r.meta["scale"].(map[string]any)
	early, _ := sc["early_s"].(float64)
	window, _ := sc["window_s"].(float64)
	if early == 0 {
		return "few", int(window)
	}
	return strconv.Itoa(int(early)), int(window)
}

// caseShort is the chart's form of a case: "256MIB 16C".
func (r *report) caseShort(section, c string) string {
	if section == "wan" {
		return wanCaseShort(c)
	}
	l := r.caseLabel(section, c)
	if section == "scale" {
		l = strings.Replace(l, "GET by digest", "DIGEST", 1)
	}
	l = strings.NewReplacer(" MiB", "MIB", " GiB", "GIB", " clients", "C", " client", "C", ",", "", "by ", "", "(", "", ")", "").Replace(l)
	return strings.ToUpper(l)
}

func (r *report) sum(section, c, metric, system string) *Summary {
	return r.sums[key{section, c, metric, system}]
}

func (r *report) markdown() string {
	var b strings.Builder
	m := r.meta
	machine, _ := m["machine"].(map[string]any)
	versions, _ := m["versions"].(map[string]any)
	fmt.Fprintf(&b, "# Entrepot benchmark, %v\n\n", m["date"])
	fmt.Fprintf(&b, "- Machine: %v cores, %v, %v memory, kernel %v\n", machine["nproc"], machine["cpu"], machine["memory"], machine["kernel"])
	mode := "full"
	if q, _ := m["quick"].(bool); q {
		mode = "quick (BENCH_QUICK=1)"
	}
	elapsed, _ := m["elapsed_s"].(float64)
	fmt.Fprintf(&b, "- Run: %s, %v rounds, %.1f min in all; manifest runs %v s each\n", mode, m["rounds"], elapsed/60, m["manifest_seconds"])
	fmt.Fprintf(&b, "- Entrepot %v (%v uncommitted files in cmd/ and internal/), %v\n", m["entrepot_commit"], m["entrepot_uncommitted_files"], m["go"])
	fmt.Fprintf(&b, "- Anchors: Distribution registry %v (proxy mode; also the upstream), nginx %v, crane %v, wrk %v, hey %v\n",
		versions["distribution"], versions["nginx"], versions["crane"], versions["wrk"], versions["hey"])
	if la, ok := m["loadavg"].(map[string]any); ok {
		fmt.Fprintf(&b, "- Load average (1, 5, 15 min) at the start: %v; at the end: %v\n", la["start"], la["end"])
	}
	if t, ok := m["tls"].(map[string]any); ok {
		fmt.Fprintf(&b, "- TLS (7): Entrepot answered over %v; nginx over %v, in %v", t["entrepot_conn"], t["nginx_conn"], t["nginx_mode"])
		if why, _ := t["nginx_ktls_obstacles"].(string); why != "" {
			fmt.Fprintf(&b, " (kernel TLS asked for, not used: %s)", why)
		}
		fmt.Fprintf(&b, "; %v\n", t["openssl"])
	}
	b.WriteString(r.wanHeader())
	if p, ok := m["entrepot_prefetch_flag"].(bool); ok && p {
		b.WriteString("- Entrepot runs with its default settings (background prefetch on); the crane measurement also shows it with --prefetch 0\n")
	}
	b.WriteString("- Medians over the rounds, with min and max; the ratio column is Entrepot's median over that row's median.\n\n")

	var tables strings.Builder
	for _, s := range specs {
		r.table(&tables, s)
	}
	targets := false
	for _, x := range r.ratios {
		targets = targets || x.Met != nil
	}
	if targets { // a run of only the tls measurement has none
		b.WriteString("## Targets\n\n| measurement | case | vs | ratio | target | |\n|---|---|---|---:|---|---|\n")
	}
	for _, x := range r.ratios {
		if x.Met == nil {
			continue
		}
		mark := "met"
		if !*x.Met {
			mark = "**missed**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", x.Table, x.Case, x.Anchor, fmtRatio(x.Value), x.Target, mark)
	}
	if targets {
		b.WriteString("\n")
	}
	b.WriteString(tables.String())
	if notes := r.errorNotes(); notes != "" {
		b.WriteString("## Errors during load runs\n\n" + notes + "\n")
	}
	return b.String()
}

// table writes one spec's table and records its ratios.
func (r *report) table(b *strings.Builder, s tableSpec) {
	var rows []string
	for _, c := range s.cases {
		subj := r.sum(s.section, c, s.metric, s.subject)
		if subj == nil {
			continue
		}
		label := r.caseLabel(s.section, c)
		tcell, rcell := "", ""
		if s.budget != nil {
			if t := s.budget(c); t != nil {
				met := t.met(subj.Median)
				tcell = fmt.Sprintf("%s %s %s", strings.Fields(t.String())[0], fmtNum(t.value), s.unit) + ": " + metWord(met)
				rcell = fmtRatio(subj.Median/t.value) + " of budget"
				r.ratios = append(r.ratios, Ratio{
					Table: s.title, Case: label, Metric: s.metric, Anchor: "budget " + fmtNum(t.value) + " " + s.unit,
					Value: subj.Median / t.value, Target: fmt.Sprintf("%s %s", strings.Fields(t.String())[0], "1.00"), Met: &met,
					Label:       s.short + " " + r.caseShort(s.section, c) + " / " + s.budgetName,
					chart:       true,
					targetValue: 1,
				})
			}
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |", label, systemNames[s.subject],
			fmtNum(subj.Median), fmtNum(subj.Min), fmtNum(subj.Max), rcell, tcell))
		for _, a := range s.anchors {
			as := r.sum(s.section, c, s.metric, a.system)
			if as == nil {
				continue
			}
			ratio := 0.0
			if as.Median != 0 {
				ratio = subj.Median / as.Median
			}
			var t *target
			if a.target != nil {
				t = a.target(c)
			}
			x := Ratio{Table: s.title, Case: label, Metric: s.metric, Anchor: systemNames[a.system], Value: ratio,
				Label: s.short + " " + r.caseShort(s.section, c) + " VS " + systemShort[a.system],
				chart: a.chart(c, t) && ratio > 0}
			tcell := ""
			if t != nil {
				met := t.met(ratio)
				x.Met, x.Target, x.targetValue = &met, t.String(), t.value
				tcell = t.String() + ": " + metWord(met)
			}
			r.ratios = append(r.ratios, x)
			rows = append(rows, fmt.Sprintf("| | %s | %s | %s | %s | %s | %s |", systemNames[a.system],
				fmtNum(as.Median), fmtNum(as.Min), fmtNum(as.Max), fmtRatio(ratio), tcell))
		}
	}
	if len(rows) == 0 {
		return
	}
	better := "lower is better"
	if s.higher {
		better = "higher is better"
	}
	fmt.Fprintf(b, "## %s (%s, %s)\n\n", s.title, s.unit, better)
	if s.note != "" {
		b.WriteString(s.note + "\n\n")
	}
	of := s.ratioOf
	if of == "" {
		of = "Entrepot"
	}
	fmt.Fprintf(b, "| case | system | median | min | max | ratio (%s / system) | target |\n|---|---|---:|---:|---:|---:|---|\n", of)
	b.WriteString(strings.Join(rows, "\n") + "\n\n")
}

func metWord(met bool) string {
	if met {
		return "met"
	}
	return "**missed**"
}

// errorNotes lists the load runs that had failed requests.
func (r *report) errorNotes() string {
	var b strings.Builder
	for k, s := range r.sums {
		if k.metric != "errors" || s.Max == 0 {
			continue
		}
		fmt.Fprintf(&b, "- %s %s via %s: failed requests per run %v\n", k.section, r.caseLabel(k.section, k.caseKey), systemNames[k.system], s.Values)
	}
	return b.String()
}
