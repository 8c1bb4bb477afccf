package picker

import (
	"testing"
	"time"
)

func (s *sim) haveAll(first, last int) func() bool {
	return func() bool {
		for i := first; i <= last; i++ {
			if !s.p.Have(i) {
				return false
			}
		}
		return true
	}
}

// (d) A reader's due pieces are fetched before background pieces, and with one fast and
// three slow peers they complete in about the time the fast peer alone needs, where handing
// due blocks to whoever asks first is much slower.
func TestSimStreamingDue(t *testing.T) {
	const pieceLen, first, last = 256 * kib, 90, 95
	const fast, slow = 2 << 20, 200 * kib
	run := func(naive bool) *sim {
		ps := seeds(4, slow)
		ps[3].rate = fast // asks last in each tick, the worst case for first-come
		s := newSim(t, pieceLen, 200*pieceLen, 11, ps)
		s.trueRates = true
		s.p.naiveDue = naive
		s.onTick = func(s *sim) {
			if s.elapsed() == 0 {
				s.p.SetWants(1, []Want{{First: first, Last: last, Due: s.now}})
			}
		}
		s.run(time.Minute, s.haveAll(first, last))
		return s
	}
	s, naive := run(false), run(true)
	fastAlone := time.Duration(float64((last-first+1)*pieceLen) / fast * float64(time.Second))
	t.Logf("due pieces done at %v (fast peer alone %v, first-come %v); %v", s.elapsed(), fastAlone, naive.elapsed(), s)
	if s.elapsed() > fastAlone*13/10+100*time.Millisecond {
		t.Errorf("due pieces took %v, fast peer alone needs %v", s.elapsed(), fastAlone)
	}
	if s.elapsed()*2 > naive.elapsed() {
		t.Errorf("due pieces took %v, first-come assignment %v: not better", s.elapsed(), naive.elapsed())
	}
	for k, i := range s.order {
		if i < first || i > last {
			t.Errorf("background piece %d completed %dth, before the due pieces", i, k+1)
		}
	}
	if len(s.order) != last-first+1 {
		t.Errorf("completed %v", s.order)
	}
}

// (d) The blocks of one urgent piece are spread over idle peers, not queued at one.
func TestSimDuePieceSpread(t *testing.T) {
	const pieceLen = 4 << 20 // 256 blocks
	s := newSim(t, pieceLen, 4*pieceLen, 3, seeds(4, 1<<20))
	s.trueRates = true
	s.pipeline = 64
	s.p.SetBackground(false)
	s.onTick = func(s *sim) {
		if s.elapsed() == 0 {
			s.p.SetWants(1, []Want{{First: 2, Last: 2, Due: s.now}})
		}
	}
	s.run(time.Minute, s.haveAll(2, 2))
	for _, sp := range s.peers {
		if sp.delivered < 256/4/2 {
			t.Errorf("peer %d delivered %d of 256 blocks", sp.id, sp.delivered)
		}
	}
	// Each of 4 equal peers takes a quarter: 4 MiB at 4 MiB/s is about a second.
	if s.elapsed() > 1500*time.Millisecond {
		t.Errorf("4 MiB piece from four 1 MiB/s peers took %v", s.elapsed())
	}
	t.Log(s)
}

// (e) An overdue piece whose first peer stalls gets duplicate requests at another peer and
// completes far sooner than waiting for the stalled requests to time out.
func TestSimOverdueDuplicates(t *testing.T) {
	run := func(noDup bool) *sim {
		ps := seeds(2, 1<<20)
		ps[0].stallAt = time.Millisecond // swallows every request it gets
		s := newSim(t, 256*kib, 40*256*kib, 1, ps)
		s.p.noDuplicates = noDup
		s.p.SetBackground(false)
		s.onTick = func(s *sim) {
			if s.elapsed() == 0 {
				s.p.SetWants(1, []Want{{First: 10, Last: 10, Due: s.now.Add(200 * time.Millisecond)}})
			}
		}
		s.run(5*time.Minute, s.haveAll(10, 10))
		return s
	}
	s, slow := run(false), run(true)
	t.Logf("with duplicates %v (%v), without %v", s.elapsed(), s, slow.elapsed())
	if s.dups == 0 {
		t.Fatalf("no duplicate requests")
	}
	if s.elapsed() > 2*time.Second || slow.elapsed() < 5*s.elapsed() {
		t.Errorf("overdue piece done at %v with duplicates, %v without", s.elapsed(), slow.elapsed())
	}
}

// (f) After a seek the new window is requested at once, and requests for the old window are
// reported for cancel when background download is off.
func TestSimSeek(t *testing.T) {
	const pieceLen = 256 * kib
	s := newSim(t, pieceLen, 1000*pieceLen, 1, seeds(4, 1<<20))
	s.trueRates = true
	s.p.SetBackground(false)
	window := func(first int) []Want {
		var ws []Want
		for i := range 16 {
			ws = append(ws, Want{First: first + i, Last: first + i, Due: s.now.Add(time.Duration(i) * 200 * time.Millisecond)})
		}
		return ws
	}
	var seekAt time.Duration
	var cancelled []Request
	s.onTick = func(s *sim) {
		switch s.elapsed() {
		case 0:
			s.p.SetWants(1, window(0))
		case time.Second:
			seekAt = s.elapsed()
			cancelled = s.p.SetWants(1, window(500))
			for _, r := range cancelled {
				delete(s.outstanding[r.Block], r.Peer)
			}
		}
	}
	s.run(time.Minute, func() bool { return seekAt > 0 })
	if len(cancelled) == 0 {
		t.Fatalf("seek cancelled nothing; outstanding before: the test proves nothing")
	}
	for _, r := range cancelled {
		if r.Block.Piece >= 16 {
			t.Errorf("cancelled %+v, outside the old window", r)
		}
		if s.p.Outstanding(r.Peer) > s.pipeline {
			t.Errorf("peer %d over pipeline", r.Peer)
		}
	}
	before := s.requests
	s.fillAll()
	if s.requests == before {
		t.Fatalf("no requests right after the seek")
	}
	for b, ids := range s.outstanding {
		if len(ids) > 0 && b.Piece < 500 {
			t.Errorf("block %+v of the old window still outstanding", b)
		}
	}
	s.run(time.Minute, s.haveAll(500, 500))
	t.Logf("first piece of the new window done %v after the seek; %d requests cancelled", s.elapsed()-seekAt, len(cancelled))
	if d := s.elapsed() - seekAt; d > 300*time.Millisecond {
		t.Errorf("first piece after the seek took %v", d)
	}
}

func (s *sim) fillAll() {
	for _, sp := range s.peers {
		s.fill(sp)
	}
}

// (d) Playback: a reader consuming the torrent at a fixed bitrate after a 2 s start-up
// buffer, wanting the next 4 pieces (under a second) each tick. With one fast and three slow peers whose sum
// is well above the bitrate, no piece may arrive after the player needs it; handing due
// blocks to whoever asks first misses deadlines on the same swarm.
func TestSimPlayback(t *testing.T) {
	const pieceLen, n = 256 * kib, 120
	const bitrate, window = 1200 * kib, 4
	play := func(naive, background bool) (late int, s *sim) {
		ps := seeds(4, 150*kib)
		ps[3].rate = 1200 * kib
		s = newSim(t, pieceLen, n*pieceLen, 4, ps)
		s.p.naiveDue = naive
		s.p.SetBackground(background)
		dueOf := func(i int) time.Time {
			return epoch.Add(2*time.Second + time.Duration(float64(i*pieceLen)/bitrate*float64(time.Second)))
		}
		s.onTick = func(s *sim) {
			head := 0
			for head < n && (s.p.Have(head) || dueOf(head).Before(s.now)) {
				head++
			}
			var ws []Want
			for i := head; i < min(head+window, n); i++ {
				ws = append(ws, Want{First: i, Last: i, Due: dueOf(i)})
			}
			for _, r := range s.p.SetWants(1, ws) {
				delete(s.outstanding[r.Block], r.Peer)
			}
		}
		s.run(10*time.Minute, s.haveAll(0, n-1))
		for i := range n {
			if at, ok := s.completed[i]; !ok || epoch.Add(at).After(dueOf(i)) {
				late++
			}
		}
		return late, s
	}
	for _, background := range []bool{false, true} {
		late, s := play(false, background)
		naiveLate, _ := play(true, background)
		t.Logf("background %v: %d of %d pieces late (first-come: %d); %v", background, late, n, naiveLate, s)
		if late > 0 {
			t.Errorf("background %v: %d pieces late", background, late)
		}
		if naiveLate < n/10 {
			t.Errorf("first-come was late only %d times: the swarm is too easy to compare", naiveLate)
		}
	}
}
