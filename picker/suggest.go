package picker

import "time"

// A peer may suggest pieces to fetch from it (BEP 6 suggest-piece). A seed spreading its
// pieces over a fleet (seed --spread) rejects a piece it already sent to someone else and
// suggests one it has sent to nobody: taking it keeps the seed's uplink on pieces the
// fleet lacks instead of round trips of rejects. Suggestions only order the background
// stage: a suggested piece comes after the due pieces and the started ones, before the
// rarest-first choice, and only if it is still a candidate of that choice.

// maxSuggested bounds the suggestions kept per peer; the newest go first.
const maxSuggested = 8

// PeerSuggest records that the peer suggests we fetch piece i from it.
func (p *Picker) PeerSuggest(id PeerID, i int) {
	pr := p.peers[id]
	if pr == nil || i < 0 || i >= p.geo.numPieces {
		return
	}
	for k, s := range pr.suggested {
		if s == i {
			pr.suggested = append(pr.suggested[:k], pr.suggested[k+1:]...)
			break
		}
	}
	if len(pr.suggested) == maxSuggested {
		pr.suggested = pr.suggested[:maxSuggested-1]
	}
	pr.suggested = append([]int{i}, pr.suggested...)
}

// pickSuggested starts the peer's suggested pieces that rarest-first could pick now,
// dropping suggestions that no longer apply.
func (p *Picker) pickSuggested(id PeerID, pr *peer, limit int, now time.Time, out []Block) []Block {
	keep := pr.suggested[:0]
	for _, i := range pr.suggested {
		switch {
		case !p.candidate(i):
			// Had, skipped, started or due: rarest-first is past it.
		case !pr.hasPiece(i) || !p.admits(i) || len(out) >= limit:
			keep = append(keep, i) // refused for now (a reject), or no room: later
		default:
			out = p.takeFree(id, pr, i, p.start(i), limit-len(out), now, out)
		}
	}
	pr.suggested = keep
	return out
}
