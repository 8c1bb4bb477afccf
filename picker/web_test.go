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

// addWebSeed adds the web seed webKey to p, marked as one when web is set.
func addWebSeed(p *Picker, web bool) {
	p.PeerAdd(webKey)
	p.PeerHaveAll(webKey)
	if web {
		p.PeerWeb(webKey)
	}
	p.PeerUnchoked(webKey)
}

func newFleetSim(nodes, pieces, blocks int, seed int64, web bool) *fleetSim {
	s := &fleetSim{blocks: blocks, pieces: pieces, originRate: 16, nodeRate: 16, webDepth: 3 * blocks, peerDepth: 8}
	pl := int64(blocks * BlockSize)
	for i := range nodes {
		n := &fleetNode{p: New(pl, pl*int64(pieces), seed+int64(i))}
		addWebSeed(n.p, web)
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
			moved := false
			for i, n := range s.nodes {
				if len(n.webQ) == 0 || sent == s.originRate {
					continue
				}
				b := n.webQ[0]
				n.webQ = n.webQ[1:]
				s.originSent++
				sent++
				moved = true
				s.receive(i, webKey, b, now)
			}
			if !moved {
				break
			}
		}
		// Each node serves the others in turn.
		for j, m := range s.nodes {
			for sent := 0; sent < s.nodeRate; {
				moved := false
				for i := range m.served {
					if len(m.served[i]) == 0 || sent == s.nodeRate {
						continue
					}
					r := m.served[i][0]
					m.served[i] = m.served[i][1:]
					sent++
					moved = true
					s.receive(i, PeerID(j), r.b, now)
				}
				if !moved {
					break
				}
			}
		}
	}
}

// A fleet of 16 nodes with a web seed as its only origin, each keeping three pieces asked
// of it: with PeerWeb the origin sends little more than one copy of the torrent (1.09 with
// these seeds); picking the web seed's pieces like any peer's sends half as much again
// (1.57), which shows that the simulation measures what PeerWeb changes.
func TestWebSeedSpreadsAcrossAFleet(t *testing.T) {
	var spread, plain float64
	for seed := range int64(2) {
		spread += newFleetSim(16, 1024, 16, 1+seed*100, true).run(t) / 2
		plain += newFleetSim(16, 1024, 16, 1+seed*100, false).run(t) / 2
	}
	t.Logf("the origin sent %.3f copies spreading, %.3f picking as from a peer", spread, plain)
	if spread > 1.2 {
		t.Errorf("the origin sent %.3f copies with PeerWeb, want at most 1.2", spread)
	}
	if plain < 1.4 {
		t.Errorf("baseline %.3f copies, expected above 1.4: the simulation no longer shows what PeerWeb changes", plain)
	}
}

// A web seed takes runs of ungiven pieces: it carries on after the last piece it took; a
// piece of the run that a peer announces before we have it (someone else fetches the same
// run) ends the run, one we have does not (the peer may have it from us).
func TestWebSeedRuns(t *testing.T) {
	p := New(BlockSize, 100*BlockSize, 1)
	addWebSeed(p, true)
	p.PeerAdd(1)
	p.PeerUnchoked(1)
	for i := 0; i < 40; i++ {
		p.PeerHave(1, i)
	}
	now := epoch
	bs := p.Pick(webKey, 3, now)
	if len(bs) != 3 {
		t.Fatalf("picked %d blocks, want 3", len(bs))
	}
	first := bs[0].Piece
	for k, b := range bs {
		if b.Piece < 40 {
			t.Fatalf("picked piece %d, which a peer has", b.Piece)
		}
		if first+k < 100 && b.Piece != first+k {
			t.Fatalf("block %d is of piece %d, want %d (a run)", k, b.Piece, first+k)
		}
	}
	if first+4 >= 100 {
		t.Skip("the run reached the end; the rest needs room after it") // not with this seed
	}
	// Completing the first piece and a peer announcing it does not end the run.
	if _, complete, _ := p.Received(webKey, bs[0], now); !complete {
		t.Fatal("a one-block piece did not complete")
	}
	p.SetHave(first)
	p.PeerHave(1, first)
	if bs := p.Pick(webKey, 1, now); len(bs) != 1 || bs[0].Piece != first+3 {
		t.Fatalf("picked %v, want piece %d: the run goes on", bs, first+3)
	}
	// A peer announcing a piece of the run still on its way ends it.
	p.PeerHave(1, first+1)
	if bs := p.Pick(webKey, 1, now); len(bs) != 1 || bs[0].Piece == first+4 {
		t.Errorf("picked %v after a peer announced piece %d of the run: want a new run", bs, first+1)
	}
}

// While some piece is ungiven a web seed takes nothing else; once a peer has every piece it
// picks like any peer.
func TestWebSeedSpreadsOnlyUngiven(t *testing.T) {
	p := New(BlockSize, 10*BlockSize, 1)
	addWebSeed(p, true)
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
