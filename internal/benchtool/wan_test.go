package main

import (
	"bytes"
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"torrentfs/metainfo"
)

func TestParseWANSeeders(t *testing.T) {
	tests := []struct {
		rates, rtts string
		want        []wanSeeder
		err         string
	}{
		{"1M,2M,4M,8M", "20ms,50ms,100ms,200ms", []wanSeeder{
			{1 << 20, 20 * time.Millisecond}, {2 << 20, 50 * time.Millisecond},
			{4 << 20, 100 * time.Millisecond}, {8 << 20, 200 * time.Millisecond}}, ""},
		{"512K", "0s", []wanSeeder{{512 << 10, 0}}, ""},
		{" 3M , 1000", "1s, 5ms", []wanSeeder{{3 << 20, time.Second}, {1000, 5 * time.Millisecond}}, ""},
		{"1M,2M", "20ms", nil, "one RTT for each rate"},
		{"1M,0", "20ms,20ms", nil, "not a positive rate"},
		{"1M,x", "20ms,20ms", nil, "not a positive rate"},
		{"1M", "20", nil, "not a round-trip time"},
		{"1M", "-5ms", nil, "not a round-trip time"},
		{"1M", "11s", nil, "not a round-trip time"},
		{"", "", nil, "not a positive rate"},
	}
	for _, tt := range tests {
		got, err := parseWANSeeders(tt.rates, tt.rtts)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseWANSeeders(%q, %q) = %v, %v; want an error saying %q", tt.rates, tt.rtts, got, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseWANSeeders(%q, %q): %v", tt.rates, tt.rtts, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("parseWANSeeders(%q, %q) = %v, want %v", tt.rates, tt.rtts, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("parseWANSeeders(%q, %q)[%d] = %v, want %v", tt.rates, tt.rtts, i, got[i], tt.want[i])
			}
		}
	}
}

func TestWANGoals(t *testing.T) {
	seeders := []wanSeeder{{1 << 20, 20 * time.Millisecond}, {2 << 20, 50 * time.Millisecond},
		{4 << 20, 100 * time.Millisecond}, {8 << 20, 200 * time.Millisecond}}
	units := map[string]int64{"256K": 256 << 10, "4M": 4 << 20, piece4Mv2: wanUnit(piece4Mv2, 4<<20)}
	if units[piece4Mv2] != 64<<10 || wanUnit("4M", 4<<20) != 4<<20 {
		t.Fatalf("wanUnit: hybrid %d, v1 %d", units[piece4Mv2], wanUnit("4M", 4<<20))
	}
	// R = 15 MiB/s, farthest RTT 200 ms.
	r := float64(15 << 20)
	want := map[[2]string]struct {
		op    string
		limit float64
	}{
		{"ttfb", "256K"}:             {"<=", 1.0 + float64(256<<10)/r},
		{"seek", "256K"}:             {"<=", 1.0 + float64(256<<10)/r},
		{"seek", "4M"}:               {"<=", 1.0 + float64(4<<20)/r},
		{"seek", piece4Mv2}:          {"<=", 1.0 + float64(64<<10)/r},
		{"seek_live", "256K"}:        {"<=", 0.4 + float64(256<<10)/r},
		{"seek_live", "4M"}:          {"<=", 0.4 + float64(4<<20)/r},
		{"seek_live", piece4Mv2}:     {"<=", 0.4 + float64(64<<10)/r},
		{"copy_frac", "256K"}:        {">=", 0.9},
		{"stalls_faststart", "256K"}: {"<=", 0},
		{"stalls_tailindex", "256K"}: {"<=", 0},
		{"paced_blocked", "256K"}:    {"<=", 0},
	}
	got := wanGoals(seeders, units, "btfs", false)
	if len(got) != len(want) {
		t.Fatalf("%d goals, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		w, ok := want[[2]string{g.metric, g.piece}]
		if !ok {
			t.Errorf("unexpected goal %+v", g)
			continue
		}
		if g.client != "btfs" || g.op != w.op || math.Abs(g.limit-w.limit) > 1e-9 {
			t.Errorf("goal %s %s: %s %s %g, want btfs %s %g", g.metric, g.piece, g.client, g.op, g.limit, w.op, w.limit)
		}
	}

	// Without the hybrid (Transmission seeders) its goals are left out; a closer swarm
	// has tighter ones.
	near := []wanSeeder{{4 << 20, 10 * time.Millisecond}, {4 << 20, 30 * time.Millisecond}}
	got = wanGoals(near, map[string]int64{"256K": 256 << 10, "4M": 4 << 20}, "torrentfs", true)
	long := false
	for _, g := range got {
		long = long || g.metric == "copy_long_frac" && g.op == ">=" && g.limit == 0.9
		if g.piece == piece4Mv2 {
			t.Errorf("goal for an unmeasured torrent: %+v", g)
		}
		if g.metric == "seek_live" && g.piece == "256K" {
			if lim := 0.06 + float64(256<<10)/float64(8<<20); math.Abs(g.limit-lim) > 1e-9 {
				t.Errorf("seek_live 256K limit %g, want %g", g.limit, lim)
			}
		}
	}
	if !long {
		t.Errorf("with the long copy measured, no goal of 90%% for it: %+v", got)
	}
}

func TestGoalsSideBySide(t *testing.T) {
	sums := summarize([]sample{
		{Client: "torrentfs", Metric: "ttfb", Piece: "256K", Value: 0.3, Unit: "s"},
		{Client: "btfs", Metric: "ttfb", Piece: "256K", Value: 1.7, Unit: "s"},
		{Client: "torrentfs", Metric: "copy_frac", Piece: "256K", Value: 0.95, Unit: "frac"},
	})
	goals := func(c string) []target {
		return []target{
			{c, "ttfb", "256K", "median", "<=", 1, "first byte ≤ 1 s"},
			{c, "copy_frac", "256K", "median", ">=", 0.9, "copy ≥ 90%"},
		}
	}
	var b bytes.Buffer
	printGoalsSideBySide(&b, sums, []string{"torrentfs", "btfs"}, goals)
	for _, want := range []string{
		"| goal | torrentfs | btfs |",
		"| first byte ≤ 1 s | median 300 ms: yes | median 1.70 s: **no** |",
		"| copy ≥ 90% | median 95%: yes | not measured |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRetarget(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "content")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a.bin"), bytes.Repeat([]byte("torrentfs"), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	orig, raw, err := metainfo.Create(context.Background(), data, metainfo.CreateOptions{
		Announce:    [][]string{{"http://127.0.0.1:6969/announce"}, {"udp://127.0.0.1:6969"}},
		PieceLength: 16 << 10, NoDate: true, Version: metainfo.Hybrid})
	if err != nil {
		t.Fatal(err)
	}
	src, dst := filepath.Join(dir, "in.torrent"), filepath.Join(dir, "out.torrent")
	if err := os.WriteFile(src, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	const url = "http://10.100.3.1:6969/announce"
	if err := retarget(src, dst, url); err != nil {
		t.Fatal(err)
	}
	got, err := metainfo.Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	if got.InfoHash != orig.InfoHash || got.InfoHashV2 != orig.InfoHashV2 {
		t.Errorf("info-hashes changed: %x %x, want %x %x", got.InfoHash, got.InfoHashV2, orig.InfoHash, orig.InfoHashV2)
	}
	if got.Announce != url || len(got.AnnounceList) != 0 {
		t.Errorf("announce %q, list %v; want %q alone", got.Announce, got.AnnounceList, url)
	}
	if err := os.WriteFile(src, []byte("d8:announce3:abce"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := retarget(src, dst, url); err == nil || !strings.Contains(err.Error(), "no info") {
		t.Errorf("retarget of a torrent without info: %v", err)
	}
}

func TestTCPSendReceive(t *testing.T) {
	// send listens on loopback and sends n bytes to the first connection.
	send := func(n int64) (string, chan error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		done := make(chan error, 1)
		go func() { done <- sendZeros(ln, n) }()
		return ln.Addr().String(), done
	}
	const n = 5<<20 + 123
	addr, done := send(n)
	if err := receiveAll(context.Background(), addr, n); err != nil {
		t.Fatalf("receiveAll: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("tcpsend: %v", err)
	}

	// A sender that stops short is an error, not a fast copy.
	addr, done = send(1000)
	if got := receiveAll(context.Background(), addr, 2000); got == nil || !strings.Contains(got.Error(), "sent 1000 bytes, want 2000") {
		t.Errorf("short sender: %v", got)
	}
	<-done
}
