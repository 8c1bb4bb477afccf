package picker

import (
	"slices"
	"time"
)

// A rate-limited seeder sends only while it has quota, and libtorrent's hands out quota
// in 500 ms ticks, and only to a sender that is starved at the tick. A seeder our
// background download keeps busy is therefore nearly always starved: an urgent request
// there waits for its next tick, 250 ms on average, whatever is cancelled. While a reader
// is about (the caller decides), one good peer is reserved: it gets due blocks only, so its
// quota, once refilled, stays for the reader's next seek.

// reserveTrickle spaces the background blocks a reserved peer gets: libtorrent refills a
// starved sender's quota only at a tick where it has something queued, so a peer left
// wholly idle keeps the empty quota our background download left it; one block every
// quarter second (64 KiB/s) lets it refill and then takes little of what it got.
const reserveTrickle = 250 * time.Millisecond

// SetReserved keeps background blocks off the peer (on) or lets them back (off). Turning it
// on returns the peer's outstanding requests for pieces that are not due, for the caller to
// cancel at the peer and report with Cancelled.
func (p *Picker) SetReserved(id PeerID, on bool) []Block {
	pr := p.peers[id]
	if pr == nil || pr.reserved == on {
		return nil
	}
	pr.reserved = on
	if !on {
		return nil
	}
	var out []Block
	for k := range pr.out {
		if _, due := p.dueAt[int(k.piece)]; !due {
			out = append(out, p.block(k))
		}
	}
	slices.SortFunc(out, func(a, b Block) int {
		if a.Piece != b.Piece {
			return a.Piece - b.Piece
		}
		return a.Begin - b.Begin
	})
	return out
}

// Reserved tells whether the peer is reserved for due blocks.
func (p *Picker) Reserved(id PeerID) bool {
	pr := p.peers[id]
	return pr != nil && pr.reserved
}
