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

// reserveAhead bounds how far ahead a reserved peer works while no read is blocked: it
// takes blocks of pieces due within this long only. The readahead of a reader that is
// not waiting (a viewer who just seeked, or plays from a full window) is left to the other
// peers, so the reserved peer's quota is not spent on the readahead of a position the
// viewer may leave at once; its next seek finds the quota there. A reader that is blocked
// (a copy, a player that caught up) gets the reserved peer's whole rate, readahead
// included.
const reserveAhead = 250 * time.Millisecond

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
	slices.SortFunc(out, CompareBlocks)
	return out
}

// Reserved tells whether the peer is reserved for due blocks.
func (p *Picker) Reserved(id PeerID) bool {
	pr := p.peers[id]
	return pr != nil && pr.reserved
}

// TrimReserved is for when no read is blocked any more: it forgets the reserved peers'
// requests for pieces due beyond reserveAhead (a readahead they took while a read waited)
// and returns them for the caller to cancel. A rate-limited seeder would otherwise spend
// the quota kept for the next seek on them; what it has already read into its send
// buffer comes anyway. Nothing while a read is still blocked.
func (p *Picker) TrimReserved(now time.Time) []Request {
	if len(p.due) > 0 && !now.Before(p.due[0].due) {
		return nil
	}
	horizon := now.Add(reserveAhead)
	var out []Request
	for id, pr := range p.peers {
		if !pr.reserved {
			continue
		}
		for k := range pr.out {
			if d, due := p.dueAt[int(k.piece)]; due && d.After(horizon) {
				out = append(out, Request{Peer: id, Block: p.block(k)})
			}
		}
	}
	sortRequests(out)
	for _, r := range out {
		p.dropRequest(r.Peer, r.Block)
	}
	return out
}
