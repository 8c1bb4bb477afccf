package swarm

import (
	"sync"
	"time"
)

// rateMeter is a byte rate smoothed over a few seconds. Loop-owned: the loop adds the bytes
// counted since the last tick and calls tick once a second.
type rateMeter struct {
	rate float64 // bytes per second
	last float64 // the last tick's rate alone
}

// recent is the rate for sizing a pipeline: the smoothed rate, or the last tick's when that
// is more, so that a pipeline grows with a connection that ramps up (a distant peer's, TCP
// slow start over a long round trip) within a tick or two instead of the smoothed rate's
// five seconds, while one slow tick does not shrink it.
func (r *rateMeter) recent() float64 { return max(r.rate, r.last) }

func (r *rateMeter) tick(bytes int64, dt time.Duration) {
	if dt <= 0 {
		return
	}
	inst := float64(bytes) / dt.Seconds()
	r.last = inst
	// A 5 s time constant: fast enough to rank peers at each 10 s choking round, slow
	// enough that one bursty second does not swing it.
	const alpha = 0.2
	r.rate += alpha * (inst - r.rate)
}

// rateLimiter is a token bucket shared by every connection that it limits; its mutex owns
// the bucket. A nil *rateLimiter means unlimited.
//
// The bucket may run into debt by up to slack before a caller sleeps, and a sleeper
// sleeps until the debt is paid: a connection then moves a few blocks between sleeps
// instead of sleeping after every block. A download limited to 2 MiB/s made 128 timer
// wake-ups a second, and 31k context switches for 64 MiB (1.4 s of CPU, aria2c's own
// limiter 0.2 s); the long-run rate is the same.
type rateLimiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	slack  float64
	tokens float64
	last   time.Time
}

// limiterSlack is how far, in time at the limit's rate, the bucket may run into debt
// before a caller sleeps; at least minLimiterSlack bytes.
const (
	limiterSlack    = 25 * time.Millisecond
	minLimiterSlack = 64 << 10
)

func newRateLimiter(bytesPerSec int64) *rateLimiter {
	if bytesPerSec <= 0 {
		return nil
	}
	rate := float64(bytesPerSec)
	burst := max(rate/4, 64<<10)
	slack := min(burst, max(rate*limiterSlack.Seconds(), minLimiterSlack))
	return &rateLimiter{rate: rate, burst: burst, slack: slack, tokens: burst, last: time.Now()}
}

// wait takes n bytes' worth of tokens, sleeping as needed; it returns false if stop closed
// first.
func (l *rateLimiter) wait(n int, stop <-chan struct{}) bool {
	l.mu.Lock()
	delay := l.take(n, time.Now())
	l.mu.Unlock()
	if delay == 0 {
		return true
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// take takes n bytes' worth of tokens at now and returns how long the caller sleeps: none
// while the debt is within slack, else until it is paid. l.mu is held.
func (l *rateLimiter) take(n int, now time.Time) time.Duration {
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	if l.tokens >= -l.slack {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}
