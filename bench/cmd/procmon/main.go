// Command procmon runs a command (the load) while it watches server
// processes: their CPU time (utime+stime from /proc/PID/stat) over the run,
// their peak resident memory (VmHWM from /proc/PID/status, reset at the
// start through /proc/PID/clear_refs), and VmRSS sampled every --interval.
// The command's own output passes through; procmon writes its JSON to --out.
//
//	procmon --pids 123,456 --children --out cost.json -- fetch --url … --clients 50
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on
// every Linux this runs on).
const userHZ = 100

// Result is what procmon writes.
type Result struct {
	PIDs []int `json:"pids"`
	// CPUS is the processes' CPU seconds (user+system) during the run.
	CPUS float64 `json:"cpu_s"`
	// PeakRSSMiB is the highest sum of VmRSS over the processes among
	// the samples; HWMSumMiB is the sum of each process's VmHWM (peak
	// since the reset at the start), an upper bound of the former.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	HWMSumMiB  float64 `json:"hwm_sum_mib"`
	HWMReset   bool    `json:"hwm_reset"`
	Samples    int     `json:"samples"`
	WallS      float64 `json:"wall_s"`
	// CommandCPUS is the command's own CPU seconds (the load's client).
	CommandCPUS float64 `json:"command_cpu_s"`
	ExitCode    int     `json:"exit_code"`
}

func main() {
	pidList := flag.String("pids", "", "comma-separated PIDs to watch (required)")
	children := flag.Bool("children", false, "also watch the direct children of those PIDs (nginx workers)")
	interval := flag.Duration("interval", 20*time.Millisecond, "VmRSS sampling interval")
	out := flag.String("out", "", "file for the JSON result (required)")
	flag.Parse()
	if *pidList == "" || *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var pids []int
	for _, s := range strings.Split(*pidList, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fail(fmt.Errorf("--pids: %w", err))
		}
		pids = append(pids, p)
	}
	if *children {
		pids = append(pids, childrenOf(pids)...)
	}

	r := Result{PIDs: pids, HWMReset: true}
	for _, p := range pids {
		// "5" resets the peak RSS (VmHWM) to the current RSS.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p), []byte("5"), 0); err != nil {
			r.HWMReset = false
		}
	}
	cpu0 := cpuTicks(pids)
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	var waitErr error
loop:
	for {
		rss := 0.0
		for _, p := range pids {
			rss += statusKiB(p, "VmRSS:")
		}
		r.PeakRSSMiB = max(r.PeakRSSMiB, rss/1024)
		r.Samples++
		select {
		case waitErr = <-done:
			break loop
		case <-tick.C:
		}
	}
	r.WallS = time.Since(t0).Seconds()
	r.CPUS = float64(cpuTicks(pids)-cpu0) / userHZ
	for _, p := range pids {
		r.HWMSumMiB += statusKiB(p, "VmHWM:") / 1024
	}
	if ps := cmd.ProcessState; ps != nil {
		r.CommandCPUS = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	if waitErr != nil {
		r.ExitCode = 1
		if ee, ok := waitErr.(*exec.ExitError); ok {
			r.ExitCode = ee.ExitCode()
		}
	}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fail(err)
	}
	os.Exit(r.ExitCode)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "procmon:", err)
	os.Exit(2)
}

// cpuTicks sums utime and stime (fields 14 and 15 of /proc/PID/stat).
func cpuTicks(pids []int) int64 {
	var total int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces: fields after it
		// start after the last ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// fields[0] is field 3 (state); utime is field 14, stime 15.
		if len(fields) > 12 {
			u, _ := strconv.ParseInt(fields[11], 10, 64)
			st, _ := strconv.ParseInt(fields[12], 10, 64)
			total += u + st
		}
	}
	return total
}

// statusKiB reads a "Name:   N kB" line of /proc/PID/status.
func statusKiB(pid int, name string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				v, _ := strconv.ParseFloat(fs[0], 64)
				return v
			}
		}
	}
	return 0
}

// childrenOf lists the direct children of pids, from /proc/PID/task/*/children.
func childrenOf(pids []int) []int {
	var out []int
	for _, p := range pids {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p, t.Name()))
			if err != nil {
				continue
			}
			for _, s := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(s); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}
