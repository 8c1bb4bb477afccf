package main

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPlayStats(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type ev struct {
		ms   int
		line string
	}
	tests := []struct {
		name    string
		events  []ev
		endMS   int
		want    float64 // media seconds asked for
		startup float64
		stalls  int
		maxGap  float64
	}{
		{"never starts", []ev{{100, "out_time_us=N/A"}, {200, "out_time_us=0"}}, 900, 10, -1, 0, 0},
		{"smooth", []ev{{300, "out_time_us=50000"}, {350, "out_time_us=100000"}, {400, "out_time_us=150000"}}, 400, 0.15, 0.3, 0, 0.05},
		{"one stall", []ev{{100, "out_time_us=1"}, {200, "out_time_us=2"}, {900, "out_time_us=3"}, {950, "out_time_us=4"}}, 950, 0, 0.1, 1, 0.7},
		{"frozen media does not count as advancing", []ev{{100, "out_time_us=5"}, {200, "out_time_us=5"}, {550, "out_time_us=5"}, {650, "out_time_us=6"}}, 650, 0, 0.1, 1, 0.55},
		{"gap of exactly the limit is not a stall", []ev{{100, "out_time_us=1"}, {600, "out_time_us=2"}}, 600, 0, 0.1, 0, 0.5},
		{"other keys ignored", []ev{{100, "frame=3"}, {150, "out_time=00:00:01"}, {200, "progress=continue"}, {250, " out_time_us=7 "}}, 250, 0, 0.25, 0, 0},
		{"cut off mid-stall", []ev{{100, "out_time_us=1000000"}}, 2000, 30, 0.1, 1, 1.9},
		{"ended at the asked length", []ev{{100, "out_time_us=10000000"}}, 2000, 10, 0.1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPlayStats(t0)
			for _, e := range tt.events {
				s.line(e.line, at(e.ms))
			}
			s.finish(at(tt.endMS), tt.want)
			if s.Stalls != tt.stalls || !near(s.Startup, tt.startup) || !near(s.MaxGap, tt.maxGap) {
				t.Errorf("startup %v stalls %d max gap %v; want %v, %d, %v", s.Startup, s.Stalls, s.MaxGap, tt.startup, tt.stalls, tt.maxGap)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// FuzzPlayStats feeds arbitrary ffmpeg output: no panic, and media time never goes back.
func FuzzPlayStats(f *testing.F) {
	f.Add("out_time_us=100\nprogress=continue\nout_time_us=N/A\nout_time_us=-5\n")
	f.Add("out_time_us=99999999999999999999999\nout_time_us=1e6\n")
	f.Fuzz(func(t *testing.T, out string) {
		t0 := time.Unix(0, 0)
		s := newPlayStats(t0)
		prev := 0.0
		for i, l := range strings.Split(out, "\n") {
			s.line(l, t0.Add(time.Duration(i)*100*time.Millisecond))
			if s.Media < prev {
				t.Fatalf("media time went back from %v to %v", prev, s.Media)
			}
			prev = s.Media
		}
		if s.Stalls < 0 || (s.Startup < 0 && s.Stalls != 0) {
			t.Fatalf("stalls %d before start-up %v", s.Stalls, s.Startup)
		}
	})
}

func TestSeekOffsets(t *testing.T) {
	const size = 128 << 20
	seen := map[int64]bool{}
	for k := range 8 {
		off := seekOffset(k, size)
		if off < 0 || off+64<<10 > size {
			t.Errorf("offset %d: %d out of range", k, off)
		}
		if seekOffset(k, size) != off {
			t.Errorf("offset %d not deterministic", k)
		}
		seen[off/(256<<10)] = true
	}
	if len(seen) < 6 {
		t.Errorf("8 offsets fall in only %d distinct 256 KiB pieces", len(seen))
	}
}

func TestSummarize(t *testing.T) {
	var s []sample
	for _, v := range []float64{3, 1, 2, 10} {
		s = append(s, sample{Client: "a", Metric: "m", Value: v, Unit: "s"})
	}
	s = append(s, sample{Client: "b", Metric: "m", Value: 5, Unit: "s"})
	got := summarize(s)
	if len(got) != 2 {
		t.Fatalf("got %d summaries, want 2", len(got))
	}
	if a := got[0]; a.client != "a" || a.n != 4 || a.min != 1 || a.med != 2.5 || a.max != 10 {
		t.Errorf("a: %+v", a)
	}
	if b := got[1]; b.n != 1 || b.med != 5 {
		t.Errorf("b: %+v", b)
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"", 0, false}, {"2M", 2 << 20, false}, {"512K", 512 << 10, false}, {"1000", 1000, false},
		{"2m", 2 << 20, false}, {"M", 0, true}, {"-1K", 0, true}, {"2G", 0, true},
	} {
		got, err := parseRate(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestParseReadAt(t *testing.T) {
	for _, tc := range []struct {
		in          string
		done, first float64
		bad         bool
	}{
		{"0.012345\n", 0.012345, -1, false},
		{"0.020000 0.019000\n", 0.02, 0.019, false},
		{"", 0, 0, true},
		{"x", 0, 0, true},
		{"1 2 3", 0, 0, true},
		{"-1", 0, 0, true},
		{"NaN", 0, 0, true},
		{"0.1 +Inf", 0, 0, true},
	} {
		done, first, err := parseReadAt(tc.in)
		if (err != nil) != tc.bad || !tc.bad && (!near(done, tc.done) || !near(first, tc.first)) {
			t.Errorf("parseReadAt(%q) = %v, %v, %v; want %v, %v, error %v", tc.in, done, first, err, tc.done, tc.first, tc.bad)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in               string
		start, end, size int64
		bad              bool
	}{
		{"bytes 0-65535/134217728", 0, 65535, 134217728, false},
		{"bytes 7-7/8", 7, 7, 8, false},
		{"bytes 3-9/*", 3, 9, -1, false},
		{"bytes 7-8/8", 0, 0, 0, true}, // end past the size
		{"bytes 9-3/100", 0, 0, 0, true},
		{"bytes */100", 0, 0, 0, true}, // the 416 form names no range
		{"bytes -1-5/10", 0, 0, 0, true},
		{"bytes +1-5/10", 0, 0, 0, true},
		{"bytes 1-5/", 0, 0, 0, true},
		{"items 1-5/10", 0, 0, 0, true},
		{"bytes 1-5", 0, 0, 0, true},
		{"bytes 1-99999999999999999999/*", 0, 0, 0, true},
		{"", 0, 0, 0, true},
	} {
		start, end, size, err := parseContentRange(tc.in)
		if (err != nil) != tc.bad || !tc.bad && (start != tc.start || end != tc.end || size != tc.size) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, error %v", tc.in, start, end, size, err, tc.start, tc.end, tc.size, tc.bad)
		}
	}
}

// FuzzParseContentRange: whatever the header, an accepted range is ordered and inside the
// size when one is given.
func FuzzParseContentRange(f *testing.F) {
	f.Add("bytes 0-65535/134217728")
	f.Add("bytes 3-9/*")
	f.Add("bytes */100")
	f.Fuzz(func(t *testing.T, v string) {
		start, end, size, err := parseContentRange(v)
		if err != nil {
			return
		}
		if start < 0 || end < start || size != -1 && end >= size {
			t.Fatalf("%q gave %d-%d/%d", v, start, end, size)
		}
	})
}

func TestReadRangeHTTP(t *testing.T) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/good", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(data))
	})
	mux.HandleFunc("/whole", func(w http.ResponseWriter, r *http.Request) {
		w.Write(data) // ignores Range
	})
	mux.HandleFunc("/shifted", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-65535/%d", len(data)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(data[:64<<10])
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	first, done, err := readRangeHTTP(srv.URL+"/good", 5000, 64<<10)
	if err != nil || first <= 0 || done < first {
		t.Errorf("good: first %v done %v err %v", first, done, err)
	}
	for _, p := range []string{"/whole", "/shifted", "/missing"} {
		if _, _, err := readRangeHTTP(srv.URL+p, 5000, 64<<10); err == nil {
			t.Errorf("%s: no error", p)
		}
	}
}

func TestCompare(t *testing.T) {
	sums := []summary{
		{client: "fuse", metric: "ttfb", piece: "256K", unit: "s", med: 0.100},
		{client: "http", metric: "ttfb", piece: "256K", unit: "s", med: 0.105},
		{client: "fuse", metric: "seek", piece: "4M", unit: "s", med: 0.100},
		{client: "http", metric: "seek", piece: "4M", unit: "s", med: 0.120},
		{client: "fuse", metric: "copy", piece: "256K", unit: "MiB/s", med: 8},
		{client: "http", metric: "copy", piece: "256K", unit: "MiB/s", med: 7.9},
		{client: "fuse", metric: "copy_frac", piece: "256K", unit: "frac", med: 1},
		{client: "http", metric: "copy_frac", piece: "256K", unit: "frac", med: 0.99},
		{client: "fuse", metric: "stalls_faststart", piece: "256K", unit: "count", med: 0},
		{client: "http", metric: "stalls_faststart", piece: "256K", unit: "count", med: 1},
		{client: "fuse", metric: "rss_copy", piece: "256K", unit: "MiB", med: 30},
		{client: "http", metric: "rss_copy", piece: "256K", unit: "MiB", med: 40},
		{client: "fuse", metric: "only_fuse", piece: "256K", unit: "s", med: 1},
		{client: "btfs", metric: "ttfb", piece: "256K", unit: "s", med: 9},
	}
	got := compare(sums, "fuse", "http", 128<<20, 10*time.Millisecond)
	want := []struct {
		metric string
		behind float64 // NaN: none
		met    string
	}{
		{"ttfb", 0.005, "yes"},
		{"seek", 0.020, "no"},
		{"copy", 128/7.9 - 128/8.0, "no"}, // 203 ms more for 128 MiB
		{"stalls_faststart", math.NaN(), "no"},
		{"rss_copy", math.NaN(), ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d comparisons, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		sameBehind := math.IsNaN(w.behind) && math.IsNaN(g.behind) || math.Abs(g.behind-w.behind) < 1e-9
		if g.metric != w.metric || !sameBehind || g.met != w.met {
			t.Errorf("%d: got %s behind %v met %q; want %s, %v, %q", i, g.metric, g.behind, g.met, w.metric, w.behind, w.met)
		}
	}
	var b strings.Builder
	printComparison(&b, got, "FUSE", "HTTP")
	if !strings.Contains(b.String(), "| seek | 4M | 100 ms | 120 ms | +20 ms | **no** |") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestParseFirstUnchoke(t *testing.T) {
	log := `time="2026-11-30T19:52:21.379Z" level=info msg="started payload" cmd=mount
time="2026-11-30T19:52:21.402Z" level=debug msg="first unchoke" after=3ms peer="127.0.0.11:6881"
time="2026-11-30T19:52:23.512Z" level=info msg="first unchoke of the swarm" after_connect=2.1s after_start=2.13s peer="127.0.0.12:6882"
time="2026-11-30T19:52:24.000Z" level=info msg="first unchoke of the swarm" peer="127.0.0.13:6883"
`
	at, ok := parseFirstUnchoke(log)
	want := time.Date(2026, 11, 30, 19, 52, 23, 512e6, time.UTC)
	if !ok || !at.Equal(want) {
		t.Fatalf("parseFirstUnchoke = %v, %v; want %v", at, ok, want)
	}
	if _, ok := parseFirstUnchoke("time=\"2026-11-30T19:52:21.379Z\" level=info msg=started\n"); ok {
		t.Fatal("found an unchoke in a log without one")
	}
	if _, ok := parseFirstUnchoke(`level=info msg="first unchoke of the swarm"` + "\n"); ok {
		t.Fatal("found an unchoke without a time")
	}
}
