package picker

import (
	"slices"
	"time"
)

// Streaming needs due pieces fetched now, yet peers' pipelines are usually full of requests
// for background pieces that they serve first, in order. These two calls let the caller
// make room: when a piece due soon has blocks nobody was asked for, it cancels background
// requests at the peers and fills their pipelines again, due blocks first.

// Starved reports whether a piece due by `by` has blocks that no peer was asked for and
// that some connected peer could serve.
func (p *Picker) Starved(by time.Time) bool {
	for _, d := range p.due {
		if d.due.After(by) {
			return false
		}
		if p.have.Has(d.piece) {
			continue
		}
		if ps := p.partial[d.piece]; ps != nil && ps.free == 0 {
			continue
		}
		if p.haveAll > 0 || p.avail[d.piece] > 0 {
			return true
		}
	}
	return false
}

// preemptSlack is how much later than the most urgent starved piece a due piece may be and
// still keep its requests at a peer: pieces due at about the same moment are about as
// urgent. It is short: a file's head and tail, prefetched half a second after it is
// opened, must not hold up a seek that a player makes right after opening.
const preemptSlack = 100 * time.Millisecond

// maxSpared bounds the age under which Preemptible leaves a request alone.
const maxSpared = 300 * time.Millisecond

// Preemptible returns the peer's outstanding requests that stand in the way of a starved
// piece due by `by` that the peer could serve: requests for pieces not due at all, and for
// pieces due more than preemptSlack after the earliest such piece (a readahead window or a
// prefetch that a seek just overtook). A peer serves requests in order, so without this the urgent blocks
// would wait for all of them. The caller cancels them at the peer, reports each with
// Cancelled, and fills the pipeline again, where the urgent blocks now come first.
//
// Requests younger than the peer's round trip are left alone: the peer has barely seen them,
// a cancel would reach it after it queued the block (libtorrent reads requested blocks into
// its send buffer at once), and the block would come anyway while a copy of it is asked of
// another peer. At a distant peer, cancelling what the last refill asked for made the same
// blocks go back and forth, each arriving several times (docs/BENCHMARKS.md, WAN lab).
//
// The round trip counted is at most maxSpared: a seeder that answers in turns (aria2c
// with an upload limit, once a second) looks far away, and its requests must still give
// way to a seek.
func (p *Picker) Preemptible(id PeerID, now, by time.Time) []Block {
	pr := p.peers[id]
	if pr == nil || len(pr.out) == 0 {
		return nil
	}
	var first time.Time
	found := false
	for _, d := range p.due {
		if d.due.After(by) {
			break
		}
		if p.have.Has(d.piece) || !pr.hasPiece(d.piece) {
			continue
		}
		if ps := p.partial[d.piece]; ps != nil && ps.free == 0 {
			continue
		}
		first, found = d.due, true
		break
	}
	if !found {
		return nil
	}
	keep := first.Add(preemptSlack)
	// Young requests are spared only for a piece that is not due yet (a readahead window
	// filling): a reader waiting now gets every request out of its way, cancels that come
	// too late included. (Sparing those made a seek's blocks queue behind the prefetch its
	// own open had ordered a millisecond before.)
	young := now.Add(-min(pr.rtt, maxSpared))
	if !first.After(now) {
		young = now
	}
	var out []Block
	for k := range pr.out {
		if due, ok := p.dueAt[int(k.piece)]; ok && !due.After(keep) {
			continue
		}
		if young.Before(now) {
			if s, ok := p.requestedAt(id, k); ok && s.After(young) {
				continue
			}
		}
		out = append(out, p.block(k))
	}
	slices.SortFunc(out, func(a, b Block) int {
		if a.Piece != b.Piece {
			return a.Piece - b.Piece
		}
		return a.Begin - b.Begin
	})
	return out
}

// requestedAt is when peer id was asked for block k, or false if it was not.
func (p *Picker) requestedAt(id PeerID, k blockKey) (time.Time, bool) {
	ps := p.partial[int(k.piece)]
	if ps == nil {
		return time.Time{}, false
	}
	bs := &ps.blocks[k.block]
	for _, r := range bs.reqs[:bs.n] {
		if r.peer == id {
			return r.since, true
		}
	}
	return time.Time{}, false
}
