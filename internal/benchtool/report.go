package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// sample is one measured number; a run's samples become JSON lines in results.jsonl.
type sample struct {
	Time   string  `json:"time"`
	Run    string  `json:"run"`   // one id per benchtool invocation
	Bench  string  `json:"bench"` // get or stream
	Client string  `json:"client"`
	Metric string  `json:"metric"`
	Piece  string  `json:"piece,omitempty"`
	Rep    int     `json:"rep"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Note   string  `json:"note,omitempty"`
	Args   string  `json:"args,omitempty"`  // extra flags the client under test was given
	Nodes  int     `json:"nodes,omitempty"` // fleet: how many nodes the lab had
}

// recorder collects samples and appends each to the results file as it comes, so an
// interrupted run keeps what it measured.
type recorder struct {
	run, bench string
	args       string // extra torrentfs flags of this run, recorded with its samples
	out        io.Writer
	samples    []sample
}

func newRecorder(bench, path string) (*recorder, func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open results: %w", err)
	}
	r := &recorder{run: time.Now().UTC().Format("20060102T150405Z"), bench: bench, out: f}
	return r, func() { f.Close() }, nil
}

func (r *recorder) add(s sample) {
	s.Time = time.Now().UTC().Format(time.RFC3339)
	s.Run, s.Bench = r.run, r.bench
	if strings.HasPrefix(s.Client, "torrentfs") {
		s.Args = r.args
	}
	r.samples = append(r.samples, s)
	b, _ := json.Marshal(s)
	fmt.Fprintf(r.out, "%s\n", b)
	note := ""
	if s.Note != "" {
		note = " (" + s.Note + ")"
	}
	fmt.Fprintf(os.Stderr, "  %-14s %-22s %-4s rep %d: %s%s\n", s.Client, s.Metric, s.Piece, s.Rep, fmtValue(s.Value, s.Unit), note)
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case "s":
		if v < 1 {
			return fmt.Sprintf("%.0f ms", v*1000)
		}
		return fmt.Sprintf("%.2f s", v)
	case "MiB", "MiB/s", "s/GiB":
		return fmt.Sprintf("%.1f %s", v, unit)
	case "frac":
		return fmt.Sprintf("%.0f%%", v*100)
	case "copies":
		return fmt.Sprintf("%.2f copies", v)
	case "count":
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

// summary is min, median and max of one client's metric.
type summary struct {
	client, metric, piece, unit string
	n                           int
	min, med, max               float64
}

func summarize(samples []sample) []summary {
	type key struct{ client, metric, piece string }
	groups := map[key][]float64{}
	units := map[key]string{}
	var order []key
	for _, s := range samples {
		k := key{s.Client, s.Metric, s.Piece}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s.Value)
		units[k] = s.Unit
	}
	// Metric by metric, clients side by side.
	metricPos := map[string]int{}
	for _, k := range order {
		if _, ok := metricPos[k.metric+k.piece]; !ok {
			metricPos[k.metric+k.piece] = len(metricPos)
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		pi, pj := metricPos[order[i].metric+order[i].piece], metricPos[order[j].metric+order[j].piece]
		if pi != pj {
			return pi < pj
		}
		return order[i].client < order[j].client
	})
	var out []summary
	for _, k := range order {
		v := slices.Clone(groups[k])
		slices.Sort(v)
		out = append(out, summary{client: k.client, metric: k.metric, piece: k.piece, unit: units[k],
			n: len(v), min: v[0], med: median(v), max: v[len(v)-1]})
	}
	return out
}

// median of sorted values.
func median(v []float64) float64 {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// printTable writes the summaries as a Markdown table, ready for docs/BENCHMARKS.md.
func printTable(w io.Writer, sums []summary) {
	fmt.Fprintln(w, "| metric | pieces | client | n | min | median | max |")
	fmt.Fprintln(w, "|--------|--------|--------|--:|----:|-------:|----:|")
	for _, s := range sums {
		fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s |\n", s.metric, s.piece, s.client, s.n,
			fmtValue(s.min, s.unit), fmtValue(s.med, s.unit), fmtValue(s.max, s.unit))
	}
}

// target is one goal for a client's metric: stat ("min", "median", "max") compared with op.
type target struct {
	client, metric, piece, stat, op string
	limit                           float64
	what                            string
}

func checkTargets(w io.Writer, sums []summary, targets []target) {
	fmt.Fprintln(w, "\n| target | measured | met |")
	fmt.Fprintln(w, "|--------|---------:|-----|")
	for _, t := range targets {
		v, unit, ok, found := evalTarget(sums, t)
		if !found {
			fmt.Fprintf(w, "| %s | not measured | no |\n", t.what)
			continue
		}
		fmt.Fprintf(w, "| %s | %s %s | %s |\n", t.what, t.stat, fmtValue(v, unit), map[bool]string{true: "yes", false: "**no**"}[ok])
	}
}

// evalTarget finds the statistic t is about and tells whether it meets t; found is false
// when the metric was not measured.
func evalTarget(sums []summary, t target) (v float64, unit string, ok, found bool) {
	var got *summary
	for i := range sums {
		s := &sums[i]
		if s.client == t.client && s.metric == t.metric && s.piece == t.piece {
			got = s
		}
	}
	if got == nil {
		return 0, "", false, false
	}
	v = map[string]float64{"min": got.min, "median": got.med, "max": got.max}[t.stat]
	ok = v <= t.limit
	if t.op == ">=" {
		ok = v >= t.limit
	}
	return v, got.unit, ok, true
}

// statOf finds a summary's statistic, for targets relative to another client.
func statOf(sums []summary, client, metric, piece, stat string) (float64, bool) {
	for _, s := range sums {
		if s.client == client && s.metric == metric && s.piece == piece {
			return map[string]float64{"min": s.min, "median": s.med, "max": s.max}[stat], true
		}
	}
	return 0, false
}

// comparison is one metric's medians for two clients (the same torrentfs through FUSE and
// through HTTP) and how far b is behind a.
type comparison struct {
	metric, piece, unit string
	a, b                float64 // medians
	// behind is the seconds b loses to a on this median (negative: b is ahead): the
	// difference itself for times, the difference in time to move the copied bytes for
	// throughputs; NaN where the metric is no time (counts, memory).
	behind float64
	met    string // "yes", "no", or "" where the goal does not apply (memory)
}

// compare pairs client a's medians with client b's, metric by metric, and checks each
// against goal: times and throughputs within goal of a's (copyBytes is what a throughput
// moved), counts (stalls, blocked reads) no higher than a's. Fractions repeat a throughput
// and are left out, and so is mount_ready, the lab's own wait before a row's clock starts
// (for HTTP it waits for the mount and then a HEAD), not a viewer's figure.
func compare(sums []summary, a, b string, copyBytes int64, goal time.Duration) []comparison {
	var out []comparison
	yes := map[bool]string{true: "yes", false: "no"}
	for _, sa := range sums {
		if sa.client != a || sa.unit == "frac" || sa.metric == "mount_ready" {
			continue
		}
		bm, ok := statOf(sums, b, sa.metric, sa.piece, "median")
		if !ok {
			continue
		}
		c := comparison{metric: sa.metric, piece: sa.piece, unit: sa.unit, a: sa.med, b: bm, behind: math.NaN()}
		switch sa.unit {
		case "s":
			c.behind = bm - sa.med
			c.met = yes[c.behind <= goal.Seconds()]
		case "MiB/s":
			if sa.med > 0 && bm > 0 {
				mib := float64(copyBytes) / (1 << 20)
				c.behind = mib/bm - mib/sa.med
				c.met = yes[c.behind <= goal.Seconds()]
			} else {
				c.met = yes[bm >= sa.med]
			}
		case "count":
			c.met = yes[bm <= sa.med]
		}
		out = append(out, c)
	}
	return out
}

// printComparison writes comparisons as a Markdown table, a's and b's medians side by side.
func printComparison(w io.Writer, cs []comparison, aName, bName string) {
	fmt.Fprintf(w, "| metric | pieces | %s median | %s median | %s behind by | met |\n", aName, bName, bName)
	fmt.Fprintln(w, "|--------|--------|-------:|-------:|-------:|-----|")
	for _, c := range cs {
		behind := "-"
		if !math.IsNaN(c.behind) {
			behind = fmt.Sprintf("%+.0f ms", c.behind*1000)
		}
		met := map[string]string{"yes": "yes", "no": "**no**", "": "-"}[c.met]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", c.metric, c.piece, fmtValue(c.a, c.unit), fmtValue(c.b, c.unit), behind, met)
	}
}
