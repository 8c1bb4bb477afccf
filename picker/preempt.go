package picker

import "time"

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

// Preemptible returns the peer's outstanding requests for pieces that are not due. The
// caller cancels them at the peer and reports each with Cancelled.
func (p *Picker) Preemptible(id PeerID) []Block {
	pr := p.peers[id]
	if pr == nil {
		return nil
	}
	var out []Block
	for k := range pr.out {
		if _, due := p.dueAt[int(k.piece)]; due {
			continue
		}
		out = append(out, p.block(k))
	}
	return out
}
