package swarm

import (
	"sync"
	"time"
)

// rateMeter is a byte rate smoothed over a few seconds. Loop-owned: the loop adds the bytes
// counted since the last tick and calls tick once a second.
type rateMeter struct {
	rate float64 // bytes per second
}

func (r *rateMeter) tick(bytes int64, dt time.Duration) {
	if dt <= 0 {
		return
	}
	inst := float64(bytes) / dt.Seconds()
	// A 5 s time constant: fast enough to rank peers at each 10 s choking round, slow
	// enough that one bursty second does not swing it.
	const alpha = 0.2
	r.rate += alpha * (inst - r.rate)
}

// rateLimiter is a token bucket shared by every connection that it limits; its mutex owns
// the bucket. A nil *rateLimiter means unlimited.
type rateLimiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newRateLimiter(bytesPerSec int64) *rateLimiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := max(float64(bytesPerSec)/4, 64<<10)
	return &rateLimiter{rate: float64(bytesPerSec), burst: burst, tokens: burst, last: time.Now()}
}

// wait takes n bytes' worth of tokens, sleeping as needed; it returns false if stop closed
// first.
func (l *rateLimiter) wait(n int, stop <-chan struct{}) bool {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	var delay time.Duration
	if l.tokens < 0 {
		delay = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
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
