package lsd

import (
	"net/netip"
	"slices"
	"time"
)

const (
	// announceInterval is how often a torrent is announced again (BEP 14: every 5 min).
	announceInterval = 5 * time.Minute
	// minInterval is the least time between two announces of one torrent (BEP 14: at most
	// once a minute), also when FindPeers is called for it again.
	minInterval = time.Minute
	// batchAhead lets a torrent due soon ride along in a message going out now, so
	// torrents settle into sharing messages.
	batchAhead = 30 * time.Second
)

// schedule decides when each torrent is announced. It is pure logic owned by the
// Service's loop, which passes the time in.
type schedule struct {
	m map[[20]byte]*entry
}

type entry struct {
	port uint16
	refs int       // FindPeers calls that want it announced; 0: kept only to honour minInterval
	last time.Time // last announce; zero if never
	next time.Time
}

// announcement is one message to send: torrents that share a port.
type announcement struct {
	port       uint16
	infohashes [][20]byte
}

func newSchedule() *schedule { return &schedule{m: map[[20]byte]*entry{}} }

// add asks for ih to be announced with port: now, or as soon as minInterval since its
// last announce allows.
func (s *schedule) add(ih [20]byte, port uint16, now time.Time) {
	e := s.m[ih]
	if e == nil {
		e = &entry{}
		s.m[ih] = e
	}
	if e.refs == 0 || e.port != port {
		e.next = now
		if !e.last.IsZero() {
			e.next = later(now, e.last.Add(minInterval))
		}
	}
	e.port = port
	e.refs++
}

// remove drops one request for ih; the torrent stops being announced when none is left.
func (s *schedule) remove(ih [20]byte) {
	if e := s.m[ih]; e != nil && e.refs > 0 {
		e.refs--
	}
}

// due returns the messages to send at now, and marks their torrents announced. Torrents
// due within batchAhead join them if minInterval allows.
func (s *schedule) due(now time.Time) []announcement {
	byPort := map[uint16][][20]byte{}
	anyDue := false
	for ih, e := range s.m {
		if e.refs == 0 {
			if e.last.IsZero() || !now.Before(e.last.Add(minInterval)) {
				delete(s.m, ih)
			}
			continue
		}
		if !now.Before(e.next) {
			anyDue = true
		}
	}
	if !anyDue {
		return nil
	}
	for ih, e := range s.m {
		if e.refs == 0 || now.Add(batchAhead).Before(e.next) ||
			!e.last.IsZero() && now.Before(e.last.Add(minInterval)) {
			continue
		}
		byPort[e.port] = append(byPort[e.port], ih)
		e.last, e.next = now, now.Add(announceInterval)
	}
	var out []announcement
	for _, port := range sortedPorts(byPort) {
		ihs := byPort[port]
		slices.SortFunc(ihs, func(a, b [20]byte) int { return slices.Compare(a[:], b[:]) })
		for len(ihs) > 0 {
			n := min(len(ihs), maxInfohashes)
			out = append(out, announcement{port: port, infohashes: ihs[:n:n]})
			ihs = ihs[n:]
		}
	}
	return out
}

// next is when due has something to do next; ok is false when nothing is wanted.
func (s *schedule) next() (t time.Time, ok bool) {
	for _, e := range s.m {
		w := e.next
		if e.refs == 0 {
			w = e.last.Add(minInterval) // to forget it
		}
		if !ok || w.Before(t) {
			t, ok = w, true
		}
	}
	return t, ok
}

func sortedPorts(m map[uint16][][20]byte) []uint16 {
	ports := make([]uint16, 0, len(m))
	for p := range m {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return ports
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// limiter caps the messages taken from each source address: a token bucket of burst
// messages, refilled at one per every. It keeps at most maxSources buckets; past that a
// new source is refused until old buckets are full again and so forgotten.
type limiter struct {
	burst      float64
	every      time.Duration
	maxSources int
	m          map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(burst int, every time.Duration, maxSources int) *limiter {
	return &limiter{burst: float64(burst), every: every, maxSources: maxSources, m: map[string]*bucket{}}
}

// allow takes a token for src at now and tells whether there was one.
func (l *limiter) allow(src string, now time.Time) bool {
	b := l.m[src]
	if b == nil {
		if len(l.m) >= l.maxSources {
			l.forgetFull(now)
			if len(l.m) >= l.maxSources {
				return false
			}
		}
		b = &bucket{tokens: l.burst, at: now}
		l.m[src] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *limiter) refill(b *bucket, now time.Time) {
	if now.After(b.at) {
		b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.every))
		b.at = now
	}
}

// forgetFull drops buckets that have refilled: forgetting them changes nothing.
func (l *limiter) forgetFull(now time.Time) {
	for src, b := range l.m {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.m, src)
		}
	}
}

// recent remembers who announced what in the last announce interval, so a FindPeers call
// learns at once of peers that announced just before it began, instead of 5 minutes
// later. It holds at most max entries; when full, it forgets expired ones, and past that
// takes no more.
type recent struct {
	max int
	n   int
	m   map[[20]byte]map[netip.AddrPort]time.Time
}

// recentFor is how long a heard announce counts: its sender announces again within
// announceInterval, a minute of slack for its timers.
const recentFor = announceInterval + time.Minute

func newRecent(max int) *recent {
	return &recent{max: max, m: map[[20]byte]map[netip.AddrPort]time.Time{}}
}

func (r *recent) add(ih [20]byte, peer netip.AddrPort, now time.Time) {
	if _, ok := r.m[ih][peer]; !ok && r.n >= r.max {
		r.expire(now)
		if r.n >= r.max {
			return
		}
	}
	if r.m[ih] == nil {
		r.m[ih] = map[netip.AddrPort]time.Time{}
	}
	if _, ok := r.m[ih][peer]; !ok {
		r.n++
	}
	r.m[ih][peer] = now
}

// peers are those heard announcing ih within recentFor of now.
func (r *recent) peers(ih [20]byte, now time.Time) []netip.AddrPort {
	var out []netip.AddrPort
	for p, at := range r.m[ih] {
		if now.Sub(at) < recentFor {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out
}

func (r *recent) expire(now time.Time) {
	for ih, ps := range r.m {
		for p, at := range ps {
			if now.Sub(at) >= recentFor {
				delete(ps, p)
				r.n--
			}
		}
		if len(ps) == 0 {
			delete(r.m, ih)
		}
	}
}
