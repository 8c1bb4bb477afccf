package swarm

import (
	"torrentfs/bitfield"
	"torrentfs/swarm/wire"
)

// Spreading (TorrentConfig.Spread, `seed --spread`): the origin of a fleet should send each
// piece about once and let the nodes trade the rest. Left alone it does not: early on every
// node sees every piece at the origin only, two nodes pick the same rarest piece, and the
// origin's uplink, the one every node waits on, carries it twice (1.5 copies of the image
// at 8 nodes, docs/BENCHMARKS.md). BEP 16's super-seeding hides pieces and reveals them one
// at a time; this is a gentler way to the same end that needs nothing of the peers but the
// fast extension (BEP 6): while some piece has not been given to anybody, a request for a
// piece already given to another peer that is still downloading (and so has it, or will
// have it soon, and can pass it on) is rejected. The requester takes it from that peer,
// and asks us for a piece nobody has yet (its rarest). A peer keeps getting a piece it
// was given, so nobody is left with half of one; a peer without the fast extension is
// served as usual; once every piece has gone out, requests are served as usual.

// spreadState counts which pieces went out to whom. Loop-owned.
type spreadState struct {
	given   []uint16 // peers each piece was given to
	ungiven int      // pieces present here and given to nobody yet
	// offered are ungiven pieces suggested to some peer since the last sweep; the next
	// suggestion is looked for from cursor, so peers are sent to different pieces.
	offered bitfield.Bitfield
	cursor  int
	present func(int) bool
}

func newSpread(present func(int) bool, n int) *spreadState {
	s := &spreadState{given: make([]uint16, n), offered: bitfield.New(n), present: present}
	for i := range n {
		if present(i) {
			s.ungiven++
		}
	}
	return s
}

// spreadRefuses decides a request of p for piece i under spreading, recording the piece as
// given to p when it is served.
func (t *Torrent) spreadRefuses(p *peerConn, i int) bool {
	s := t.spread
	if s == nil || s.ungiven == 0 || !p.fast || p.given.Has(i) {
		return false
	}
	if s.given[i] > 0 && t.leecherHas(p, i) {
		return true
	}
	if p.given.Len() == 0 {
		p.given = bitfield.New(t.info.NumPieces())
	}
	p.given.Set(i)
	if s.given[i] == 0 {
		// p takes a piece nobody had: line up its next one, so that its request after
		// this piece is for an ungiven piece too, not a reject and a round trip.
		defer t.spreadSuggest(p, 1)
		s.ungiven--
		if s.ungiven == 0 {
			t.log.Debug("spreading done: every piece has gone out once")
		}
	}
	if s.given[i] < ^uint16(0) {
		s.given[i]++
	}
	return false
}

// spreadSuggest suggests (BEP 6) up to n ungiven pieces to p, a downloading peer with
// the fast extension, while spreading: at its unchoke, and each time it is given a piece
// nobody had, so that its picker (which takes a suggested piece before its rarest-first
// choice) asks us for pieces the fleet lacks before it asks for one we would reject.
func (t *Torrent) spreadSuggest(p *peerConn, n int) {
	s := t.spread
	if s == nil || s.ungiven == 0 || !p.fast || p.hasAll {
		return
	}
	for tries := 0; n > 0 && tries < 4*n; tries++ {
		i := s.suggestion()
		if i < 0 {
			return
		}
		if p.has.Has(i) || p.given.Has(i) {
			continue
		}
		p.send(wire.Message{ID: wire.Suggest, Index: uint32(i)})
		n--
	}
}

// suggestion is an ungiven piece to suggest (BEP 6) with a reject, one not suggested to
// anybody since the last sweep if there is one, or -1.
func (s *spreadState) suggestion() int {
	n := len(s.given)
	for sweep := 0; sweep < 2; sweep++ {
		for k := range n {
			i := (s.cursor + k) % n
			if s.given[i] == 0 && s.present(i) && !s.offered.Has(i) {
				s.offered.Set(i)
				s.cursor = (i + 1) % n
				return i
			}
		}
		s.offered = bitfield.New(n) // every ungiven piece was offered: offer them again
	}
	return -1
}

// leecherHas tells whether a connected peer other than p that is still downloading has
// piece i, or is getting it from us: it can pass the piece on. (Another seed could too,
// but then spreading our pieces would not spare anybody's uplink.)
func (t *Torrent) leecherHas(p *peerConn, i int) bool {
	n := t.info.NumPieces()
	for _, q := range t.peers.list {
		if q != p && !q.hasAll && (q.has.Has(i) || q.given.Has(i)) && q.has.Count() < n {
			return true
		}
	}
	return false
}
