package picker

import (
	"slices"
	"testing"
	"time"
)

// fleetSim is a fleet in rounds: nodes that each run a Picker, share one web seed (an
// origin sending originRate blocks a round, round robin over the nodes' requests) and
// serve each other (nodeRate blocks a round each, in request order). A node announces a
// piece to every other node the round after it completed it. It counts the blocks the
// origin sent.
type fleetSim struct {
	nodes      []*fleetNode
	blocks     int // per piece
	pieces     int
	originRate int
	nodeRate   int
	webDepth   int // blocks a node keeps asked of the web seed
	peerDepth  int // blocks a node keeps asked of each other node
	originSent int
	announce   [][2]int // node, piece: to announce at the next round
}

type fleetNode struct {
	p      *Picker
	webQ   []Block      // asked of the origin, in order
	served [][]fleetReq // asked of this node by others, in order
}

type fleetReq struct {
	from int
	b    Block
}

const webKey PeerID = 1000

func newFleetSim(nodes, pieces, blocks int, seed int64, web bool) *fleetSim {
	s := &fleetSim{blocks: blocks, pieces: pieces, originRate: 8, nodeRate: 8, webDepth: 12, peerDepth: 8}
	pl := int64(blocks * BlockSize)
	for i := range nodes {
		n := &fleetNode{p: New(pl, pl*int64(pieces), seed+int64(i))}
		n.p.PeerAdd(webKey)
		n.p.PeerHaveAll(webKey)
		if web {
			n.p.PeerWeb(webKey)
		}
		n.p.PeerUnchoked(webKey)
		for j := range nodes {
			if j != i {
				n.p.PeerAdd(PeerID(j))
				n.p.PeerUnchoked(PeerID(j))
			}
		}
		s.nodes = append(s.nodes, n)
	}
	return s
}

// receive hands node i a block from peer from; a completed piece is announced next round.
func (s *fleetSim) receive(i int, from PeerID, b Block, now time.Time) {
	n := s.nodes[i]
	cancel, complete, ok := n.p.Received(from, b, now)
	if !ok {
		return
	}
	for _, c := range cancel {
		if c == webKey {
			n.webQ = slices.DeleteFunc(n.webQ, func(x Block) bool { return x == b })
			continue
		}
		srv := s.nodes[c]
		srv.served[i] = slices.DeleteFunc(srv.served[i], func(r fleetReq) bool { return r.from == i && r.b == b })
	}
	if complete {
		n.p.SetHave(b.Piece)
		s.announce = append(s.announce, [2]int{i, b.Piece})
	}
}

// run plays rounds until every node is done and returns the copies the origin sent.
func (s *fleetSim) run(t *testing.T) float64 {
	for _, n := range s.nodes {
		n.served = make([][]fleetReq, len(s.nodes))
	}
	now := epoch
	for round := 0; ; round++ {
		if round > 100000 {
			t.Fatal("the fleet did not finish")
		}
		now = now.Add(100 * time.Millisecond)
		for _, a := range s.announce {
			for j, n := range s.nodes {
				if j != a[0] {
					n.p.PeerHave(PeerID(a[0]), a[1])
				}
			}
		}
		s.announce = s.announce[:0]
		done := true
		for i, n := range s.nodes {
			if n.p.Done() {
				continue
			}
			done = false
			if free := s.webDepth - len(n.webQ); free >= s.webDepth/2 {
				n.webQ = append(n.webQ, n.p.Pick(webKey, free, now)...)
			}
			for j, m := range s.nodes {
				if j == i {
					continue
				}
				out := n.p.Outstanding(PeerID(j))
				for _, b := range n.p.Pick(PeerID(j), s.peerDepth-out, now) {
					m.served[i] = append(m.served[i], fleetReq{i, b})
				}
			}
		}
		if done {
			return float64(s.originSent) / float64(s.pieces*s.blocks)
		}
		// The origin: round robin over the nodes' queues.
		for sent := 0; sent < s.originRate; {
			any := false
			for i, n := range s.nodes {
				if len(n.webQ) == 0 || sent == s.originRate {
					continue
				}
				b := n.webQ[0]
				n.webQ = n.webQ[1:]
				s.originSent++
				sent++
				any = true
				s.receive(i, webKey, b, now)
			}
			if !any {
				break
			}
		}
		// Each node serves the others in turn.
		for j, m := range s.nodes {
			for sent := 0; sent < s.nodeRate; {
				any := false
				for i := range m.served {
					if len(m.served[i]) == 0 || sent == s.nodeRate {
						continue
					}
					r := m.served[i][0]
					m.served[i] = m.served[i][1:]
					sent++
					any = true
					s.receive(i, PeerID(j), r.b, now)
				}
				if !any {
					break
				}
			}
		}
	}
}

// A fleet of 8 nodes with a web seed as its only origin, each keeping three pieces asked
// of it: with PeerWeb the origin sends little more than one copy of the torrent; picking
// the web seed's pieces like any peer's sends more (the baseline shows that the simulation
// measures what PeerWeb changes).
func TestWebSeedSpreadsAcrossAFleet(t *testing.T) {
	var spread, plain float64
	for seed := range int64(4) {
		spread += newFleetSim(8, 512, 4, 1+seed*100, true).run(t) / 4
		plain += newFleetSim(8, 512, 4, 1+seed*100, false).run(t) / 4
	}
	t.Logf("the origin sent %.3f copies spreading, %.3f picking as from a peer", spread, plain)
	if spread > 1.12 {
		t.Errorf("the origin sent %.3f copies with PeerWeb, want at most 1.12", spread)
	}
	if plain < spread+0.05 {
		t.Errorf("baseline %.3f copies is not clearly above spreading's %.3f: the simulation does not show the difference", plain, spread)
	}
}

// A web seed takes runs: from a random place in the middle half of the longest run of
// pieces no peer has, then onwards; pieces a peer announced end a run; a peer with every
// piece ends spreading.
func TestWebSeedRuns(t *testing.T) {
	p := New(BlockSize, 100*BlockSize, 1)
	p.PeerAdd(webKey)
	p.PeerHaveAll(webKey)
	p.PeerWeb(webKey)
	p.PeerUnchoked(webKey)
	p.PeerAdd(1)
	p.PeerUnchoked(1)
	for i := 0; i < 40; i++ {
		p.PeerHave(1, i) // the longest ungiven run is 40..99
	}
	now := epoch
	bs := p.Pick(webKey, 5, now)
	if len(bs) != 5 {
		t.Fatalf("picked %d blocks, want 5", len(bs))
	}
	first := bs[0].Piece
	if first < 40+60/4 || first >= 40+60/4+60/2 {
		t.Errorf("run starts at %d, want in the middle half of 40..99", first)
	}
	for k, b := range bs {
		if b.Piece != first+k {
			t.Errorf("block %d is of piece %d, want %d (a run)", k, b.Piece, first+k)
		}
	}
	// A peer announces the next piece: the run ends there and a new one starts in the
	// longest run left.
	next := first + 5
	p.PeerHave(1, next)
	bs = p.Pick(webKey, 1, now)
	if len(bs) != 1 || bs[0].Piece == next || bs[0].Piece < 40 {
		t.Fatalf("after %d was announced, picked %v", next, bs)
	}
	longLo, longHi := 40, first-1 // the longer of 40..first-1 and next+1..99
	if 99-next > first-40 {
		longLo, longHi = next+1, 99
	}
	if l := longHi - longLo + 1; bs[0].Piece < longLo+l/4 || bs[0].Piece >= longLo+l/4+max(1, l/2) {
		t.Errorf("new run starts at %d, want in the middle half of %d..%d", bs[0].Piece, longLo, longHi)
	}
}

// While some piece is ungiven a web seed takes nothing else; once a peer has every piece it
// picks like any peer.
func TestWebSeedSpreadsOnlyUngiven(t *testing.T) {
	p := New(BlockSize, 10*BlockSize, 1)
	p.PeerAdd(webKey)
	p.PeerHaveAll(webKey)
	p.PeerWeb(webKey)
	p.PeerUnchoked(webKey)
	p.PeerAdd(1)
	for i := range 9 {
		p.PeerHave(1, i) // piece 9 is the only ungiven one
	}
	p.PeerAdd(2)
	p.PeerAdd(3)
	if bs := p.Pick(webKey, 10, epoch); len(bs) != 1 || bs[0].Piece != 9 {
		t.Fatalf("picked %v, want piece 9 only", bs)
	}
	p.PeerAdd(4)
	p.PeerHaveAll(4)
	if bs := p.Pick(webKey, 10, epoch); len(bs) != 9 {
		t.Errorf("with a seed about, picked %v, want the other 9 pieces", bs)
	}
}
