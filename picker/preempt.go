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

// Preemptible returns the peer's outstanding requests that stand in the way of a starved
// piece due by `by` that the peer could serve: requests for pieces not due at all, and for
// pieces due more than preemptSlack after the earliest such piece (a readahead window or a
// prefetch that a seek just overtook). A peer serves requests in order, so without this the urgent blocks
// would wait for all of them. The caller cancels them at the peer, reports each with
// Cancelled, and fills the pipeline again, where the urgent blocks now come first.
func (p *Picker) Preemptible(id PeerID, by time.Time) []Block {
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
	var out []Block
	for k := range pr.out {
		if due, ok := p.dueAt[int(k.piece)]; ok && !due.After(keep) {
			continue
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

// A piece can also become urgent after its blocks were requested: a readahead window's
// piece that the reader catches up with, a file's prefetched tail that a player then
// reads, a piece a seek lands on while the window or prefetch has it on order. Its blocks
// then sit in the peers' queues behind whatever was asked for before them, and Starved
// (which looks for blocks nobody was asked for) does not see it. These two calls find
// such a piece and the requests queued ahead of it.

// blockedPiece is the earliest due piece a reader waits on (due by now) that has blocks
// on order, and its due time.
func (p *Picker) blockedPiece(now time.Time) (piece int, due time.Time, ok bool) {
	for _, d := range p.due {
		if d.due.After(now) {
			break
		}
		if p.have.Has(d.piece) {
			continue
		}
		if ps := p.partial[d.piece]; ps != nil && ps.got+ps.free < len(ps.blocks) {
			return d.piece, d.due, true
		}
	}
	return 0, time.Time{}, false
}

// since is when peer id was asked for block k, or false if it was not.
func (p *Picker) since(id PeerID, k blockKey) (time.Time, bool) {
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

// aheadOf returns peer id's requests that were made before its last request for a block of
// piece i and are for pieces due after keep, or not due at all: the ones the peer will
// serve before piece i although they are less urgent.
func (p *Picker) aheadOf(id PeerID, i int, keep time.Time) []Block {
	pr := p.peers[id]
	ps := p.partial[i]
	if pr == nil || ps == nil || len(pr.out) == 0 {
		return nil
	}
	var last time.Time
	for bi := range ps.blocks {
		bs := &ps.blocks[bi]
		if bs.got {
			continue
		}
		for _, r := range bs.reqs[:bs.n] {
			if r.peer == id && r.since.After(last) {
				last = r.since
			}
		}
	}
	if last.IsZero() {
		return nil
	}
	var out []Block
	for k := range pr.out {
		if due, ok := p.dueAt[int(k.piece)]; ok && !due.After(keep) {
			continue
		}
		if s, ok := p.since(id, k); ok && s.Before(last) {
			out = append(out, p.block(k))
		}
	}
	return out
}

// BlockedBehind reports whether a piece a reader waits on (due by now) has blocks on order
// at a peer that has less urgent requests queued ahead of them (see QueuedAhead).
func (p *Picker) BlockedBehind(now time.Time) bool {
	i, due, ok := p.blockedPiece(now)
	if !ok {
		return false
	}
	keep := due.Add(preemptSlack)
	ps := p.partial[i]
	seen := map[PeerID]bool{}
	for bi := range ps.blocks {
		bs := &ps.blocks[bi]
		if bs.got {
			continue
		}
		for _, r := range bs.reqs[:bs.n] {
			if seen[r.peer] {
				continue
			}
			seen[r.peer] = true
			if len(p.aheadOf(r.peer, i, keep)) > 0 {
				return true
			}
		}
	}
	return false
}

// QueuedAhead returns the peer's requests queued ahead of its requests for the piece a
// reader waits on (see BlockedBehind) that are for pieces not due within preemptSlack of
// it. The caller cancels them at the peer, reports each with Cancelled, and fills the
// pipeline again: the blocked piece's blocks are then first in line there, and the
// cancelled blocks, asked for again, queue behind them.
func (p *Picker) QueuedAhead(id PeerID, now time.Time) []Block {
	i, due, ok := p.blockedPiece(now)
	if !ok {
		return nil
	}
	out := p.aheadOf(id, i, due.Add(preemptSlack))
	slices.SortFunc(out, func(a, b Block) int {
		if a.Piece != b.Piece {
			return a.Piece - b.Piece
		}
		return a.Begin - b.Begin
	})
	return out
}
