package dht

import (
	"net/netip"
	"time"
)

// tokenBucket is a rate limiter: rate tokens a second, up to burst saved. Pure logic with now
// passed in; each one has a single owner.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(now time.Time, rate, burst float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// ipLimiter is a token bucket per source IP, for at most max IPs. When full it forgets the IPs
// whose buckets have refilled (they are as good as new), at most every sweepEvery; until room
// is made, new IPs are refused, so spoofed sources cannot grow it.
type ipLimiter struct {
	rate, burst float64
	max         int
	m           map[netip.Addr]*tokenBucket
	lastSweep   time.Time
}

const sweepEvery = 100 * time.Millisecond

func newIPLimiter(rate, burst float64, max int) *ipLimiter {
	return &ipLimiter{rate: rate, burst: burst, max: max, m: map[netip.Addr]*tokenBucket{}}
}

func (l *ipLimiter) allow(ip netip.Addr, now time.Time) bool {
	b, ok := l.m[ip]
	if !ok {
		if len(l.m) >= l.max {
			if now.Sub(l.lastSweep) < sweepEvery {
				return false
			}
			l.lastSweep = now
			full := time.Duration(l.burst / l.rate * float64(time.Second))
			for k, v := range l.m {
				if now.Sub(v.last) >= full {
					delete(l.m, k)
				}
			}
			if len(l.m) >= l.max {
				return false
			}
		}
		b = &tokenBucket{}
		l.m[ip] = b
	}
	return b.take(now, l.rate, l.burst)
}

// peek says whether take would succeed now, without taking.
func (b *tokenBucket) peek(now time.Time, rate, burst float64) bool {
	if b.last.IsZero() {
		return burst >= 1
	}
	t := b.tokens
	if d := now.Sub(b.last); d > 0 {
		t = min(burst, t+d.Seconds()*rate)
	}
	return t >= 1
}
