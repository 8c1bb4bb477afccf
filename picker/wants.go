package picker

import (
	"slices"
	"time"
)

type duePiece struct {
	piece int
	due   time.Time
}

// SetWants replaces the wants of one owner (a reader head); other owners' wants stay. A
// piece's due time is the earliest over all owners. It returns the outstanding requests that
// became useless (pieces neither due nor wanted in the background); with background
// download on and nothing skipped that is none, since every piece is wanted eventually.
func (p *Picker) SetWants(owner int, wants []Want) []Request {
	if len(wants) == 0 {
		delete(p.wants, owner)
	} else {
		p.wants[owner] = slices.Clone(wants)
	}
	p.rebuildDue()
	return p.dropStale()
}

// ClearWants drops every want of the owner.
func (p *Picker) ClearWants(owner int) []Request { return p.SetWants(owner, nil) }

// Due returns the due time of piece i and whether any owner wants it.
func (p *Picker) Due(i int) (time.Time, bool) {
	t, ok := p.dueAt[i]
	return t, ok
}

func (p *Picker) rebuildDue() {
	n := p.NumPieces()
	old := p.dueAt
	p.dueAt = make(map[int]time.Time, len(old))
	for _, ws := range p.wants {
		for _, w := range ws {
			for i := max(w.First, 0); i <= min(w.Last, n-1); i++ {
				if p.have.Has(i) {
					continue
				}
				if t, ok := p.dueAt[i]; !ok || w.Due.Before(t) {
					p.dueAt[i] = w.Due
				}
			}
		}
	}
	p.due = p.due[:0]
	for i, t := range p.dueAt {
		p.due = append(p.due, duePiece{i, t})
	}
	slices.SortFunc(p.due, func(a, b duePiece) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return a.piece - b.piece
	})
	// Pieces entering or leaving the due set move out of or into the rarest-first buckets;
	// sorted so the random tie-break stays reproducible.
	var changed []int
	for i := range old {
		if _, ok := p.dueAt[i]; !ok {
			changed = append(changed, i)
		}
	}
	for i := range p.dueAt {
		if _, ok := old[i]; !ok {
			changed = append(changed, i)
		}
	}
	slices.Sort(changed)
	for _, i := range changed {
		p.refresh(i)
	}
}

// blockRange is blocks lo..hi of a piece.
type blockRange struct{ lo, hi int }

// PreferBlocks makes blocks lo..hi of piece i the first of it to be requested, before its
// lower blocks: a read waits for exactly those, and when each block can be verified on its
// own (BEP 52) they are all it needs. The latest call for a piece wins; the preference
// ends when the piece is had.
//
// The piece may already be requested in block order (a read head wants it before the read
// itself comes), its hot blocks queued at peers behind others. While a hot block is still
// to come, PreferBlocks returns the outstanding requests for the piece's other blocks, for
// the caller to cancel at the peers and report with Cancelled: refilled, the pipelines
// then carry the hot blocks first.
func (p *Picker) PreferBlocks(i, lo, hi int) []Request {
	if i < 0 || i >= p.NumPieces() || p.have.Has(i) {
		return nil
	}
	n := p.geo.numBlocks(i)
	lo, hi = max(lo, 0), min(hi, n-1)
	if lo > hi {
		return nil
	}
	p.hot[i] = blockRange{lo, hi}
	ps := p.partial[i]
	if ps == nil {
		return nil
	}
	waiting := false
	for b := lo; b <= hi; b++ {
		if !ps.blocks[b].got {
			waiting = true
			break
		}
	}
	if !waiting {
		return nil
	}
	var out []Request
	for b := range ps.blocks {
		if b >= lo && b <= hi {
			continue
		}
		bs := &ps.blocks[b]
		for _, r := range bs.reqs[:bs.n] {
			out = append(out, Request{Peer: r.peer, Block: p.block(blockKey{int32(i), int32(b)})})
		}
	}
	return out
}
