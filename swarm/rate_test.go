package swarm

import (
	"testing"
	"time"

	"torrentfs/picker"
)

// TestRateLimiterSlack drives the bucket with a fake clock: a caller moving 16 KiB blocks
// at twice the limit sleeps only every few blocks, and the bytes let through over a long
// run are the limit's, within the burst.
func TestRateLimiterSlack(t *testing.T) {
	const rate = 2 << 20
	l := newRateLimiter(rate)
	start := l.last
	now := start
	var sleeps, sent int
	const blocks = 4096
	for range blocks {
		d := l.take(16<<10, now)
		sent += 16 << 10
		if d > 0 {
			sleeps++
			if d < limiterSlack {
				t.Fatalf("slept %v, less than the slack's %v", d, limiterSlack)
			}
			now = now.Add(d)
		}
		now = now.Add(4 * time.Millisecond) // the caller's own pace: 4 MiB/s
	}
	elapsed := now.Sub(start).Seconds()
	sent -= int(l.burst) // the full bucket at the start
	if got, want := float64(sent)/elapsed, float64(rate); got > want*1.02 || got < want*0.95 {
		t.Errorf("let through %.0f B/s, limit %d", got, rate)
	}
	if sleeps > blocks/3 {
		t.Errorf("slept %d times for %d blocks: every block or so", sleeps, blocks)
	}
	if sleeps == 0 {
		t.Error("never slept at twice the limit")
	}
}

// TestRateLimiterUnderLimit: a caller below the limit never sleeps.
func TestRateLimiterUnderLimit(t *testing.T) {
	l := newRateLimiter(2 << 20)
	now := l.last
	for range 1000 {
		if d := l.take(16<<10, now); d != 0 {
			t.Fatalf("slept %v under the limit", d)
		}
		now = now.Add(10 * time.Millisecond) // 1.6 MiB/s
	}
}

// A connection ramping up: the smoothed rate lags by seconds, the recent one follows the
// last tick; one slow tick does not pull recent below the smoothed rate.
func TestRateMeterRecent(t *testing.T) {
	var r rateMeter
	r.tick(1<<20, time.Second)
	if r.rate >= 1<<20 || r.recent() != 1<<20 {
		t.Fatalf("after one 1 MiB tick: smoothed %.0f, recent %.0f", r.rate, r.recent())
	}
	for range 20 {
		r.tick(1<<20, time.Second)
	}
	r.tick(0, time.Second)
	if r.recent() != r.rate || r.rate < 1<<19 {
		t.Fatalf("after a stall of one tick: smoothed %.0f, recent %.0f", r.rate, r.recent())
	}
}

// TestPressingLingers drives pressing with a fake clock: a copy whose reads take less
// than pressFraction of the download (the window's later pieces come first) but wait for
// nearly every read goes on pressing once it pressed; a viewer's reads, which wait for
// nothing once it has its position, stop pressing after pressLinger; a seek's short
// wait does not start it.
func TestPressingLingers(t *testing.T) {
	tr := &Torrent{waiting: make(map[int][]*readReq)}
	now := time.Unix(1e9, 0)
	tr.lastTick = now
	tr.downTotal = 10 << 20 // downloading 10 MiB/s; reads take 1 MiB/s
	tr.readRate.tick(1<<20, time.Second)
	fill := func(waiting bool) bool {
		clear(tr.waiting)
		if waiting {
			tr.waiting[0] = nil
		}
		tr.pressed = tr.pressing(now)
		return tr.pressed
	}
	step := func(d time.Duration) { now = now.Add(d); tr.lastTick = now }

	// A seek waits 300 ms: no press.
	for range 3 {
		if fill(true) {
			t.Fatal("a read waiting 300 ms at a slow read rate pressed")
		}
		step(100 * time.Millisecond)
	}
	fill(false)
	// A copy: reads wait without a break for pressWait.
	for range 11 {
		fill(true)
		step(100 * time.Millisecond)
	}
	if !tr.pressed {
		t.Fatal("reads that waited a second without a break do not press")
	}
	// Then reads wait 150 ms of every 200 ms, at a slow read rate: still pressing.
	for range 20 {
		if !fill(false) {
			t.Fatalf("a copy whose reads wait with 50 ms breaks stopped pressing at %v", now)
		}
		step(50 * time.Millisecond)
		for range 3 {
			fill(true)
			step(50 * time.Millisecond)
		}
	}
	// No read waits any more (a viewer ahead of its position): pressing ends after
	// pressLinger.
	fill(false)
	step(pressLinger / 2)
	if !fill(false) {
		t.Fatal("stopped pressing within pressLinger of the last wait")
	}
	step(pressLinger)
	if fill(false) {
		t.Fatal("still pressing pressLinger after the last wait, at a slow read rate")
	}
}

// TestPipelineFollowsSlowStart: a connection whose blocks double every round trip (TCP's
// slow start) has twice its last round trip's blocks asked of it, ahead of the tick's
// rate; after a pause of two round trips that count is forgotten.
func TestPipelineFollowsSlowStart(t *testing.T) {
	tr := &Torrent{pk: picker.New(1<<20, 64<<20, 1)}
	p := &peerConn{key: 1, reqq: 1000}
	tr.pk.PeerAdd(1) // no round trip measured: counted per 10 ms
	now := time.Unix(1e9, 0)
	base := tr.pipelineDepth(p, now)
	tr.countRoundTrip(p, now)
	for n := 2; n <= 64; n *= 2 {
		// n blocks in this round trip (the one that opened it included), then the first
		// of the next closes it.
		for k := 1; k < n; k++ {
			tr.countRoundTrip(p, now.Add(time.Duration(k)*9*time.Millisecond/time.Duration(n)))
		}
		now = now.Add(10 * time.Millisecond)
		tr.countRoundTrip(p, now)
		if d, want := tr.pipelineDepth(p, now), 2*n+minPipeline; d != want {
			t.Fatalf("after a round trip of %d blocks the pipeline is %d deep, want %d", n, d, want)
		}
	}
	now = now.Add(30 * time.Millisecond)
	tr.countRoundTrip(p, now)
	if d := tr.pipelineDepth(p, now); d != base {
		t.Fatalf("after a pause the pipeline is %d deep, want the rate's %d", d, base)
	}

	// While a viewer reads (a read head has wants) and reads do not press, the floor is
	// off: a seek's piece is not queued at a peer beyond what its rate delivers.
	tr.countRoundTrip(p, now)
	for k := 1; k < 32; k++ {
		tr.countRoundTrip(p, now.Add(time.Duration(k)*9*time.Millisecond/32))
	}
	now = now.Add(10 * time.Millisecond)
	tr.countRoundTrip(p, now)
	tr.pins = map[int]pinRange{1: {}}
	if d := tr.pipelineDepth(p, now); d != base {
		t.Fatalf("a viewer reading: the pipeline is %d deep, want the rate's %d", d, base)
	}
	tr.pressed, tr.downTotal = true, 1<<20
	if d, want := tr.pipelineDepth(p, now), 2*32+minPipeline; d < want {
		t.Fatalf("reads pressing: the pipeline is %d deep, want at least %d", d, want)
	}
}
