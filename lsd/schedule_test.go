package lsd

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func count(as []announcement) (n int) {
	for _, a := range as {
		n += len(a.infohashes)
	}
	return n
}

func TestScheduleAnnouncesNowThenEveryFiveMinutes(t *testing.T) {
	s := newSchedule()
	s.add(ihA, 6881, t0)
	if at, ok := s.next(); !ok || !at.Equal(t0) {
		t.Fatalf("next = %v %v, want now", at, ok)
	}
	if as := s.due(t0); len(as) != 1 || as[0].port != 6881 || as[0].infohashes[0] != ihA {
		t.Fatalf("due = %+v", as)
	}
	if as := s.due(t0.Add(4 * time.Minute)); as != nil {
		t.Errorf("announced again after 4 min: %+v", as)
	}
	if at, _ := s.next(); !at.Equal(t0.Add(announceInterval)) {
		t.Errorf("next = %v, want %v", at, t0.Add(announceInterval))
	}
	if n := count(s.due(t0.Add(announceInterval))); n != 1 {
		t.Errorf("%d announced at 5 min, want 1", n)
	}
}

func TestScheduleAtMostOncePerMinute(t *testing.T) {
	s := newSchedule()
	s.add(ihA, 1, t0)
	s.due(t0)
	// A second FindPeers for the same torrent adds no announce.
	s.add(ihA, 1, t0.Add(time.Second))
	if as := s.due(t0.Add(time.Second)); as != nil {
		t.Errorf("second caller announced again: %+v", as)
	}
	// Removed and asked for again 10 s later: waits for the minute.
	s.remove(ihA)
	s.remove(ihA)
	s.add(ihA, 1, t0.Add(10*time.Second))
	if at, _ := s.next(); !at.Equal(t0.Add(minInterval)) {
		t.Errorf("next = %v, want a minute after the last", at)
	}
	if as := s.due(t0.Add(59 * time.Second)); as != nil {
		t.Errorf("announced within the minute: %+v", as)
	}
	if n := count(s.due(t0.Add(minInterval))); n != 1 {
		t.Errorf("%d announced after the minute, want 1", n)
	}
}

func TestScheduleForgetsRemovedTorrents(t *testing.T) {
	s := newSchedule()
	s.add(ihA, 1, t0)
	s.due(t0)
	s.remove(ihA)
	if as := s.due(t0.Add(2 * time.Minute)); as != nil {
		t.Errorf("removed torrent announced: %+v", as)
	}
	if _, ok := s.next(); ok || len(s.m) != 0 {
		t.Errorf("schedule still holds %d torrents", len(s.m))
	}
}

func TestScheduleSharesMessages(t *testing.T) {
	s := newSchedule()
	s.add(ihA, 1, t0)
	s.add(ihB, 1, t0.Add(10*time.Second)) // due within batchAhead of A's next
	s.due(t0)
	s.due(t0.Add(10 * time.Second))
	as := s.due(t0.Add(announceInterval))
	if len(as) != 1 || len(as[0].infohashes) != 2 {
		t.Errorf("due = %+v, want one message with both", as)
	}
	// Other ports need other messages; many torrents several.
	s = newSchedule()
	for i := range maxInfohashes + 1 {
		s.add([20]byte{byte(i)}, 1, t0)
	}
	s.add(ihB, 2, t0)
	as = s.due(t0)
	if len(as) != 3 || count(as) != maxInfohashes+2 {
		t.Errorf("due gave %d messages of %d torrents, want 3 of %d", len(as), count(as), maxInfohashes+2)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2, 10*time.Second, 2)
	if !l.allow("a", t0) || !l.allow("a", t0) || l.allow("a", t0) {
		t.Error("a burst of 2 is not 2")
	}
	if !l.allow("a", t0.Add(10*time.Second)) || l.allow("a", t0.Add(10*time.Second)) {
		t.Error("refill is not one per 10 s")
	}
	if !l.allow("b", t0) {
		t.Error("b refused")
	}
	if l.allow("c", t0.Add(time.Second)) {
		t.Error("a third source accepted while two buckets are in use")
	}
	if !l.allow("c", t0.Add(time.Minute)) {
		t.Error("a third source refused after the others refilled")
	}
}

func TestRecent(t *testing.T) {
	r := newRecent(2)
	p1 := netip.MustParseAddrPort("10.0.0.1:1")
	p2 := netip.MustParseAddrPort("10.0.0.2:1")
	r.add(ihA, p1, t0)
	r.add(ihA, p1, t0.Add(time.Second)) // the same peer again takes no room
	r.add(ihB, p2, t0)
	if got := r.peers(ihA, t0.Add(time.Minute)); len(got) != 1 || got[0] != p1 {
		t.Errorf("peers(A) = %v, want [%v]", got, p1)
	}
	r.add(ihA, p2, t0) // full
	if got := r.peers(ihA, t0); len(got) != 1 {
		t.Errorf("a full recent took more: %v", got)
	}
	later := t0.Add(recentFor)
	if got := r.peers(ihB, later); len(got) != 0 {
		t.Errorf("expired peers reported: %v", got)
	}
	r.add(ihA, p2, later.Add(time.Second)) // makes room by forgetting the expired
	if got := r.peers(ihA, later.Add(time.Second)); len(got) != 1 || got[0] != p2 {
		t.Errorf("peers(A) = %v after expiry, want [%v]", got, p2)
	}
}
