package picker

import "time"

// Web seeds (BEP 19) are shared sources. In a fleet every downloader asks the same origin,
// and until every piece has left it once the origin's uplink is what the whole fleet waits
// on. Rarest-first with a random tie-break has each downloader fetch random pieces of its
// own there, and a piece one downloader has asked the origin for but not yet announced
// looks ungiven to the others, who ask for it too: in the 8-node web-seed fleet the origin
// sent 1.35-1.40 copies of the image (docs/BENCHMARKS.md).
//
// So a web seed (PeerWeb) takes the pieces no peer has in runs: it carries on after the
// last piece it took while the next is still ungiven, and otherwise starts at a random
// ungiven piece. Downloaders then work apart. One that reaches where another started
// finds those pieces announced and starts anew elsewhere; one that hears a peer announce
// a piece of its run that it has not got yet (two that started close together would fetch
// the same pieces all the way) does too. The swarm keeps few pieces asked of a slow web
// seed (about a second of its rate), since what is asked is claimed until it comes.
// Contiguous runs also make fewer, longer HTTP ranges.
//
// While ungiven pieces remain, a web seed takes nothing else in the background: a piece
// some peer has comes from that peer. Once none remain, or a peer that is not a web seed
// has every piece, every piece has left the origin and a web seed picks like any peer: the
// origin's further copies then only add to what the peers serve.

// PeerWeb marks the peer as a web seed: a have-all source shared by every downloader of
// the torrent (see above).
func (p *Picker) PeerWeb(id PeerID) {
	pr := p.peers[id]
	if pr == nil || pr.web {
		return
	}
	pr.web = true
	pr.webNext = -1
	p.webs = append(p.webs, pr)
}

// spreading tells whether the web seeds should take ungiven pieces only: every peer that
// has every piece is a web seed, and some candidate piece no peer has is left.
func (p *Picker) spreading() bool {
	seeds := 0
	for _, w := range p.webs {
		if w.all {
			seeds++
		}
	}
	return p.haveAll == seeds && len(p.rare.buckets) > 0 && len(p.rare.buckets[0]) > 0
}

// pickUngiven is the background stage of a web seed while spreading: free blocks of
// started pieces no peer has (a run cut short by the last pick's limit), then runs.
func (p *Picker) pickUngiven(id PeerID, pr *peer, limit int, now time.Time, out []Block) []Block {
	// Spreading: no other peer has every piece, so avail counts every holder.
	n := len(out)
	out = p.pickPartialOf(id, pr, limit, now, out, func(i int) bool { return p.avail[i] == 0 })
	if len(out) > n {
		pr.webNext = out[len(out)-1].Piece + 1 // the run goes on after the piece finished
	}
	for len(out) < limit {
		i := pr.webNext
		if i < 0 || i >= p.NumPieces() || !p.ungivenCandidate(i) {
			if i = p.runStart(); i < 0 {
				break
			}
			pr.runFrom = i
		}
		if !p.admits(i) {
			break
		}
		out = p.takeFree(id, pr, i, p.start(i), limit-len(out), now, out)
		pr.webNext = i + 1
	}
	return out
}

// ungivenCandidate tells whether piece i is a rarest-first candidate no peer has.
func (p *Picker) ungivenCandidate(i int) bool { return p.rare.contains(i) && p.avail[i] == 0 }

// runStart is where a web seed starts a new run: an ungiven candidate piece chosen
// uniformly at random, or -1 if there is none. Downloaders that start runs at the same
// moment then spread over the torrent; a start at the middle of the longest gap, which a
// single downloader would prefer, had them all meet there (the 16-node fleet: 2.7 copies
// of a 256-piece image; 1.56 against 1.32 copies in a simulation of it like
// TestWebSeedSpreadsAcrossAFleet's).
func (p *Picker) runStart() int {
	if len(p.rare.buckets) == 0 || len(p.rare.buckets[0]) == 0 {
		return -1
	}
	b := p.rare.buckets[0]
	return int(b[p.rng.IntN(len(b))])
}

// runMet is told that a peer announced piece i: a web seed whose current run holds it
// shares the run with another downloader (two that started close together would
// otherwise fetch the same pieces all the way), so it starts a new one at its next pick.
func (p *Picker) runMet(i int) {
	if len(p.webs) == 0 || p.have.Has(i) {
		return // no web seed, or a piece we have: the peer may have it from us
	}
	for _, pr := range p.webs {
		if pr.webNext >= 0 && pr.runFrom <= i && i < pr.webNext {
			pr.webNext = -1
		}
	}
}
