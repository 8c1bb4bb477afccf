package swarm

import (
	"testing"
	"time"
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
