package picker

import (
	"math/rand/v2"
	"testing"
	"time"

	"torrentfs/bitfield"
)

// benchPicker is a picker of 50k pieces of 16 blocks with 50 peers each having frac of the
// pieces (frac 1: have-all).
func benchPicker(frac float64) (*Picker, []PeerID) {
	const pieces, peers = 50_000, 50
	p := New(16*BlockSize, pieces*16*BlockSize, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []PeerID
	for k := range peers {
		id := PeerID(k)
		p.PeerAdd(id)
		if frac >= 1 {
			p.PeerHaveAll(id)
		} else {
			bf := bitfield.New(pieces)
			for i := range pieces {
				if rng.Float64() < frac {
					bf.Set(i)
				}
			}
			p.PeerBitfield(id, bf)
		}
		p.PeerUnchoked(id)
		p.PeerRate(id, float64(100+k)*kib)
		ids = append(ids, id)
	}
	return p, ids
}

// BenchmarkPick measures one Pick of up to 4 blocks plus the Received calls for them, in a
// steady download: the cost the run loop pays per request.
func BenchmarkPick(b *testing.B) {
	for _, bc := range []struct {
		name  string
		frac  float64
		wants bool
	}{
		{"seeds", 1, false},
		{"half", 0.5, false},
		{"sparse", 0.02, false},
		{"half/streaming", 0.5, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, ids := benchPicker(bc.frac)
			now := epoch
			head := 0
			blocks := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if bc.wants && i%64 == 0 {
					head = (head + 1) % p.geo.numPieces
					p.SetWants(1, []Want{{First: head, Last: head + 20, Due: now.Add(time.Second)}})
				}
				id := ids[i%len(ids)]
				for _, bl := range p.Pick(id, 4, now) {
					blocks++
					if _, complete, _ := p.Received(id, bl, now); complete {
						p.SetHave(bl.Piece)
					}
				}
				if p.Done() {
					b.StopTimer()
					p, ids = benchPicker(bc.frac)
					b.StartTimer()
				}
				now = now.Add(time.Millisecond)
			}
			b.ReportMetric(float64(blocks)/float64(b.N), "blocks/op")
		})
	}
}

// BenchmarkReceived measures Received on its own.
func BenchmarkReceived(b *testing.B) {
	p, ids := benchPicker(1)
	var pending []Request
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(pending) == 0 {
			b.StopTimer()
			for _, id := range ids {
				for _, bl := range p.Pick(id, 64, epoch) {
					pending = append(pending, Request{id, bl})
				}
			}
			if len(pending) == 0 {
				p, ids = benchPicker(1)
			}
			b.StartTimer()
			continue
		}
		r := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		if _, complete, _ := p.Received(r.Peer, r.Block, epoch); complete {
			p.SetHave(r.Block.Piece)
		}
	}
}
