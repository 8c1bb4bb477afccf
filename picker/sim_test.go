package picker

import (
	"container/heap"
	"fmt"
	"testing"
	"time"

	"torrentfs/bitfield"
)

// The simulation drives a Picker the way the torrent's run loop does, against simulated
// peers on a simulated clock: no goroutines, fully reproducible.

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type simPeer struct {
	id      PeerID
	has     bitfield.Bitfield // nil-length means have-all
	all     bool
	rate    float64 // upload rate in bytes per second
	latency time.Duration
	stallAt time.Duration // stops sending anything from then on; 0 never
	joinAt  time.Duration
	leaveAt time.Duration // 0 never

	// toggles lists the times at which the peer chokes us, then unchokes us, and so on.
	toggles []time.Duration

	joined, gone bool
	choked       bool
	epoch        int       // bumped by a choke: deliveries queued before it are discarded
	busy         time.Time // when its upload link is free
	window       int       // bytes delivered since the last tick
	delivered    int       // blocks
	measured     float64
}

func (sp *simPeer) hasPiece(i int) bool { return sp.all || sp.has.Has(i) }

type delivery struct {
	epoch int
	at    time.Time
	seq   int
	peer  *simPeer
	block Block
}

type deliveries []delivery

func (d deliveries) Len() int { return len(d) }
func (d deliveries) Less(i, j int) bool {
	if !d[i].at.Equal(d[j].at) {
		return d[i].at.Before(d[j].at)
	}
	return d[i].seq < d[j].seq
}
func (d deliveries) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *deliveries) Push(x any)   { *d = append(*d, x.(delivery)) }
func (d *deliveries) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

type sim struct {
	t        *testing.T
	p        *Picker
	pieceLen int64
	total    int64
	now      time.Time
	peers    []*simPeer
	byID     map[PeerID]*simPeer
	events   deliveries
	seq      int
	nextTick time.Time
	pipeline int
	// trueRates makes the loop report each peer's real rate instead of a measured one.
	trueRates bool
	trace     bool
	// failOnce makes the first completion of these pieces fail the hash check.
	failOnce map[int]bool
	onTick   func(s *sim)

	completed   map[int]time.Duration
	order       []int
	requests    int
	dups        int // requests for a block already outstanding at another peer
	cancels     int
	maxPartial  int
	expired     int
	outstanding map[Block]map[PeerID]bool // what the loop has sent and not seen answered
}

func newSim(t *testing.T, pieceLen, total int64, seed int64, peers []*simPeer) *sim {
	s := &sim{
		t: t, p: New(pieceLen, total, seed), pieceLen: pieceLen, total: total,
		now: epoch, peers: peers, byID: make(map[PeerID]*simPeer), pipeline: 16,
		completed: make(map[int]time.Duration), outstanding: make(map[Block]map[PeerID]bool),
	}
	for _, sp := range peers {
		s.byID[sp.id] = sp
	}
	return s
}

func (s *sim) elapsed() time.Duration { return s.now.Sub(epoch) }

func (s *sim) join(sp *simPeer) {
	sp.joined = true
	sp.busy = s.now
	s.p.PeerAdd(sp.id)
	if sp.all {
		s.p.PeerHaveAll(sp.id)
	} else {
		s.p.PeerBitfield(sp.id, sp.has)
	}
	if s.trueRates {
		s.p.PeerRate(sp.id, sp.rate)
	}
	s.p.PeerUnchoked(sp.id)
}

func (s *sim) leave(sp *simPeer) {
	sp.gone = true
	freed := s.p.PeerRemove(sp.id)
	for _, b := range freed {
		delete(s.outstanding[b], sp.id)
	}
	if s.p.Outstanding(sp.id) != 0 {
		s.t.Fatalf("peer %d removed but %d requests outstanding", sp.id, s.p.Outstanding(sp.id))
	}
}

// fill asks the picker for requests up to the pipeline depth and sends them.
func (s *sim) fill(sp *simPeer) {
	if !sp.joined || sp.gone || sp.choked {
		return
	}
	free := s.pipeline - s.p.Outstanding(sp.id)
	if free <= 0 {
		return
	}
	blocks := s.p.Pick(sp.id, free, s.now)
	if len(blocks) > free {
		s.t.Fatalf("Pick(%d, %d) returned %d blocks", sp.id, free, len(blocks))
	}
	if n := s.p.Outstanding(sp.id); n > s.pipeline {
		s.t.Fatalf("peer %d has %d outstanding, pipeline is %d", sp.id, n, s.pipeline)
	}
	s.maxPartial = max(s.maxPartial, len(s.p.partial))
	for _, b := range blocks {
		s.send(sp, b)
	}
}

func (s *sim) send(sp *simPeer, b Block) {
	if !sp.hasPiece(b.Piece) {
		s.t.Fatalf("block %+v requested from peer %d which does not have piece %d", b, sp.id, b.Piece)
	}
	if s.p.Have(b.Piece) {
		s.t.Fatalf("block %+v requested but piece %d is verified", b, b.Piece)
	}
	if s.outstanding[b] == nil {
		s.outstanding[b] = make(map[PeerID]bool)
	}
	if s.outstanding[b][sp.id] {
		s.t.Fatalf("block %+v requested twice from peer %d", b, sp.id)
	}
	if len(s.outstanding[b]) > 0 {
		s.dups++
	}
	if len(s.outstanding[b]) > maxCopies { // maxCopies, and one more for a peer that outpaces them
		s.t.Fatalf("block %+v requested from %d peers", b, len(s.outstanding[b])+1)
	}
	s.outstanding[b][sp.id] = true
	s.requests++
	if sp.stallAt > 0 && s.elapsed() >= sp.stallAt {
		return // swallowed
	}
	start := s.now.Add(sp.latency)
	if sp.busy.After(start) {
		start = sp.busy
	}
	done := start.Add(time.Duration(float64(b.Length) / sp.rate * float64(time.Second)))
	if sp.stallAt > 0 && done.Sub(epoch) > sp.stallAt {
		return
	}
	sp.busy = done
	s.seq++
	heap.Push(&s.events, delivery{epoch: sp.epoch, at: done.Add(sp.latency), seq: s.seq, peer: sp, block: b})
}

func (s *sim) deliver(d delivery) {
	sp := d.peer
	if sp.gone || d.epoch != sp.epoch {
		return
	}
	if s.trace {
		s.t.Logf("%v peer %d delivers %+v", s.elapsed(), sp.id, d.block)
	}
	sp.window += d.block.Length
	sp.delivered++
	delete(s.outstanding[d.block], sp.id)
	cancel, complete, ok := s.p.Received(sp.id, d.block, s.now)
	for _, id := range cancel {
		s.cancels++
		delete(s.outstanding[d.block], id)
		s.p.Cancelled(id, d.block) // already forgotten by Received; must be harmless
	}
	if complete {
		if !ok {
			s.t.Fatalf("complete without ok for %+v", d.block)
		}
		i := d.block.Piece
		if _, dup := s.completed[i]; dup {
			s.t.Fatalf("piece %d completed twice", i)
		}
		if s.failOnce[i] {
			delete(s.failOnce, i)
			s.p.PieceFailed(i)
		} else {
			s.completed[i] = s.elapsed()
			s.order = append(s.order, i)
			s.p.SetHave(i)
		}
	}
	s.fill(sp)
}

func (s *sim) tick() {
	for _, sp := range s.peers {
		switch {
		case !sp.joined && s.elapsed() >= sp.joinAt:
			s.join(sp)
		case sp.joined && !sp.gone && sp.leaveAt > 0 && s.elapsed() >= sp.leaveAt:
			s.leave(sp)
		}
		if sp.joined && !sp.gone && len(sp.toggles) > 0 && s.elapsed() >= sp.toggles[0] {
			sp.toggles = sp.toggles[1:]
			sp.choked = !sp.choked
			if sp.choked {
				// A BEP 3 peer discards our queued requests when it chokes.
				sp.epoch++
				sp.busy = s.now
				for _, b := range s.p.PeerChoked(sp.id) {
					delete(s.outstanding[b], sp.id)
				}
			} else {
				s.p.PeerUnchoked(sp.id)
			}
		}
		if sp.joined && !sp.gone && !s.trueRates {
			// Rate as a run loop measures it: a moving average of delivered bytes per second,
			// updated only while something was asked of the peer.
			if sp.window > 0 || s.p.Outstanding(sp.id) > 0 {
				sp.measured = 0.5*sp.measured + 0.5*float64(sp.window)
				if sp.measured < 1 {
					sp.measured = 1
				}
				s.p.PeerRate(sp.id, sp.measured)
			}
			sp.window = 0
		}
	}
	for _, r := range s.p.Expired(s.now) {
		s.expired++
		delete(s.outstanding[r.Block], r.Peer)
	}
	if s.onTick != nil {
		s.onTick(s)
	}
	checkInvariants(s.t, s.p)
	for _, sp := range s.peers {
		s.fill(sp)
	}
}

// run advances the simulation until done reports true or limit passes.
func (s *sim) run(limit time.Duration, done func() bool) {
	s.t.Helper()
	const tickEvery = 100 * time.Millisecond
	if s.nextTick.IsZero() {
		s.nextTick = s.now
	}
	for !done() {
		next := s.nextTick
		if s.elapsed() > limit {
			s.t.Fatalf("simulation not done after %v: %d/%d pieces", limit, len(s.completed), s.p.geo.numPieces)
		}
		if len(s.events) > 0 && s.events[0].at.Before(next) {
			d := heap.Pop(&s.events).(delivery)
			s.now = d.at
			s.deliver(d)
			continue
		}
		s.now = next
		s.nextTick = next.Add(tickEvery)
		s.tick()
	}
}

func (s *sim) allDone() bool { return s.p.Done() }

// checkFinal asserts the invariants every finished download must hold.
func (s *sim) checkFinal() {
	s.t.Helper()
	for i := range s.p.geo.numPieces {
		if !s.p.Have(i) {
			s.t.Errorf("piece %d not had", i)
		}
	}
	if len(s.completed) != s.p.geo.numPieces {
		s.t.Errorf("%d pieces completed, want %d", len(s.completed), s.p.geo.numPieces)
	}
	if len(s.p.partial) != 0 || s.p.partialFree != 0 {
		s.t.Errorf("%d partial pieces left, %d free blocks", len(s.p.partial), s.p.partialFree)
	}
	for _, sp := range s.peers {
		if sp.joined && !sp.gone && s.p.Outstanding(sp.id) != 0 {
			s.t.Errorf("peer %d still has %d outstanding", sp.id, s.p.Outstanding(sp.id))
		}
	}
}

func seeds(n int, rate float64) []*simPeer {
	var ps []*simPeer
	for i := range n {
		ps = append(ps, &simPeer{id: PeerID(i + 1), all: true, rate: rate, latency: 20 * time.Millisecond})
	}
	return ps
}

func (s *sim) String() string {
	return fmt.Sprintf("t=%v pieces=%d requests=%d dups=%d cancels=%d expired=%d maxPartial=%d",
		s.elapsed(), len(s.completed), s.requests, s.dups, s.cancels, s.expired, s.maxPartial)
}
