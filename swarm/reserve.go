package swarm

import (
	"math"
	"time"

	"torrentfs/swarm/wire"
)

// While a reader is about, one good peer is kept for due blocks only (picker/reserve.go
// says why: a rate-limited seeder that our background download keeps busy answers an
// urgent request only at its next quota tick). A reader is about while any read head has
// wants, and for reserveLinger after: a player that closes and reopens a file to seek, or
// pauses, comes back soon. A torrent mounted or served for reading (ForReaders) keeps one
// all along, chosen as soon as enough peers have unchoked us, so that the reserved peer's
// quota is untouched when the first read comes. The background download keeps every other
// peer, so it needs at least reserveMinPeers unchoked peers to spare one.
const (
	reserveLinger   = 30 * time.Second
	reserveMinPeers = 3
)

// updateReserve picks, keeps or drops the reserved peer. Loop-owned, like the fields it
// uses (reserved, lastViewing).
func (t *Torrent) updateReserve(now time.Time) {
	if len(t.pins) > 0 {
		t.lastViewing = now
	}
	viewing := t.cfg.ForReaders || t.readLately(now)
	t.pk.SetViewing(viewing)
	t.pk.SetPaced(t.readLately(now))
	cur := t.reserved
	if cur != nil && (!t.peers.has(cur) || cur.peerChoking || cur.snubbed) {
		t.unreserve()
		cur = nil
	}
	if !viewing || t.pk.Done() {
		if cur != nil {
			t.unreserve()
		}
		return
	}
	if cur != nil && t.reserveBlind && t.ratesMeasured() {
		// Chosen as peers unchoked, before any rate was known. Where the rates measured
		// since differ, choose by rate: kept, a blind choice cost seeks over a WAN (the
		// first to unchoke is the nearest, there the slowest). Where they are alike, the
		// blind choice is as good as any other and is kept. Choosing again would compare
		// its rate, only the trickle since it was reserved, with the others' full rates,
		// so it would always be replaced, even when it is the fastest, and by a peer whose
		// quota the background download has just spent.
		t.reserveBlind = false
		if !t.ratesAlike(cur) {
			t.unreserve()
			cur = nil
		}
	}
	if cur != nil {
		return
	}
	var best *peerConn
	usable := 0
	for _, p := range t.peers.list {
		if p.peerChoking || p.snubbed || !p.amInterested {
			continue
		}
		usable++
		// The fastest; among peers not measured yet (a mount's first second), the one
		// with the fewest requests out, whose quota the background has spent least.
		if best == nil || p.downRate.rate > best.downRate.rate ||
			p.downRate.rate == best.downRate.rate && t.pk.Outstanding(p.key) < t.pk.Outstanding(best.key) {
			best = p
		}
	}
	if best == nil || usable < reserveMinPeers {
		return
	}
	t.reserved = best
	t.reserveBlind = best.downRate.rate == 0
	for _, b := range t.pk.SetReserved(best.key, true) {
		t.trace(best, "cancel", b.Piece, b.Begin)
		best.send(wire.Message{ID: wire.Cancel, Index: uint32(b.Piece), Begin: uint32(b.Begin), Length: uint32(b.Length)})
		t.pk.Cancelled(best.key, b)
	}
	best.log.Debug("reserved for due blocks while a reader is about")
	t.fillAll() // the cancelled background blocks go to the others
}

// ratesMeasured tells whether a tick has measured some peer's rate.
func (t *Torrent) ratesMeasured() bool {
	for _, p := range t.peers.list {
		if p.downRate.rate > 0 {
			return true
		}
	}
	return false
}

// ratesAlike tells whether the peers other than skip that a tick has measured, at least
// two, are within alikeRates of each other.
func (t *Torrent) ratesAlike(skip *peerConn) bool {
	lo, hi, n := math.Inf(1), 0.0, 0
	for _, p := range t.peers.list {
		if p == skip || p.peerChoking || p.snubbed || p.downRate.rate <= 0 {
			continue
		}
		lo, hi, n = min(lo, p.downRate.rate), max(hi, p.downRate.rate), n+1
	}
	return n >= 2 && hi <= alikeRates*lo
}

// alikeRates is the ratio of the fastest measured peer's rate to the slowest's under
// which ratesAlike calls them alike: seeders under the same upload limit on loopback
// measure within 1.25 of each other after a second; the WAN lab's links differ 2-8 times.
const alikeRates = 1.5

func (t *Torrent) unreserve() {
	if p := t.reserved; p != nil {
		t.pk.SetReserved(p.key, false)
		t.reserved = nil
		if t.peers.has(p) {
			p.log.Debug("no longer reserved")
			t.fill(p)
		}
	}
}
