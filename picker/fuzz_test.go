package picker

import (
	"testing"
	"time"

	"torrentfs/bitfield"
)

// FuzzOps drives a picker with arbitrary sequences of calls, as hostile or buggy peers and a
// confused caller might, and checks that it never panics, never requests a block twice from
// one peer or from a peer without the piece, and keeps its bookkeeping consistent.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{0, 0, 1, 0, 3, 0, 16, 4, 0, 8, 3, 1, 3, 7, 1, 2, 9, 0, 200, 6})
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x00\x0b\x03\x03\x0c\x07\x07\x03\x0d\x0e\x0f\x03\x03\x03"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		const n = 7
		p := New(3*BlockSize, n*3*BlockSize-100, 1) // 3 blocks a piece, the last shorter
		now := epoch
		next := func() int {
			if len(ops) == 0 {
				return 0
			}
			b := ops[0]
			ops = ops[1:]
			return int(b)
		}
		var picked []Request
		for len(ops) > 0 {
			op, id := next()%20, PeerID(next()%4)
			arg := next()
			now = now.Add(time.Duration(arg) * 100 * time.Millisecond)
			switch op {
			case 0:
				p.PeerAdd(id)
			case 1:
				p.PeerHave(id, arg%(n+1))
			case 2:
				p.PeerHaveAll(id)
			case 3:
				for _, b := range p.Pick(id, arg%8, now) {
					pr := p.peers[id]
					if pr == nil || !pr.hasPiece(b.Piece) {
						t.Fatalf("picked %v for peer %d without the piece", b, id)
					}
					picked = append(picked, Request{id, b})
				}
			case 4, 5:
				if len(picked) > 0 {
					r := picked[arg%len(picked)]
					p.Received(r.Peer, r.Block, now)
				}
			case 6:
				p.Received(id, Block{arg % n, (arg % 4) * BlockSize, BlockSize}, now)
			case 7:
				p.PeerRemove(id)
			case 8:
				p.PeerChoked(id)
			case 9:
				if len(picked) > 0 {
					r := picked[arg%len(picked)]
					p.Rejected(r.Peer, r.Block, now, arg%2 == 0)
				}
			case 10:
				p.Expired(now)
			case 11:
				p.SetWants(int(id), []Want{{First: arg % n, Last: arg%n + int(id), Due: now}})
			case 12:
				p.SetHave(arg % n)
			case 13:
				p.PieceFailed(arg % n)
			case 14:
				p.SetBackground(arg%2 == 0)
			case 15:
				p.SetSkip(arg%n, arg%n+1, arg%3 == 0)
			case 16:
				b := bitfield.New(n)
				for i := range n {
					if arg&(1<<i) != 0 {
						b.Set(i)
					}
				}
				p.PeerBitfield(id, b)
				p.PeerRate(id, float64(arg)*1000)
			case 17:
				for _, b := range p.SetReserved(id, arg%2 == 0) {
					p.Cancelled(id, b)
				}
			case 18:
				p.PeerSuggest(id, arg%(n+1)-1)
			case 19:
				p.PeerUnchoked(id)
			}
			checkInvariants(t, p)
		}
	})
}
