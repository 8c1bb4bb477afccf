package picker

import "time"

// Pacing while a reader is about. A rate-limited seeder lends its quota ahead: libtorrent
// tops a connection's quota up to about a second of its upload rate at each 500 ms tick,
// from a bank that fills at the limit while anyone waits for it, and aria2c and
// Transmission compare an average with their limit. A download that asks for everything
// the limit allows keeps that bank empty, so a seek's blocks wait for the seeder's next
// tick (or its pay-back); one that asks for paceShare of it leaves the rest in the bank,
// and the seek's blocks go out at once. So while a reader is about (SetPaced) that does
// not press (SetPressing: a viewer, not a copy), what a peer that is not reserved is asked
// for, readahead and background alike, is paced to paceShare of its capacity: the rate it
// delivers when we do not hold it back. The blocks a read waits for are not paced: they
// take the bank.
//
// paceShare is half: a 4 MiB seek against four seeders needs about a second of each one's
// quota (what libtorrent lends a connection at once, at the rate we take), and the bank
// then refills within a second or two. Measured (docs/BENCHMARKS.md): a share of 0.6 left
// seeks two seconds apart a median of 345 ms, half left them 88 ms. It matches
// pressFraction (swarm): reads that take less than half of what we download are served
// by the paced half with room to spare.
const (
	paceShare = 0.5
	// paceBurst is how many seconds of the paced rate a peer's bucket holds: requests go
	// out evenly, a few at a time, not as a burst after a pause.
	paceBurst = 0.1
)

// SetPaced turns pacing on while a reader is about (reading, or read within a while) and
// off when none is: a mount nobody reads downloads at full rate.
func (p *Picker) SetPaced(on bool) { p.paced = on }

// Paced tells what SetPaced last said.
func (p *Picker) Paced() bool { return p.paced }

// pacing tells whether the peer's picks are paced now: not before its capacity is known
// (updateCapacity).
func (p *Picker) pacing(pr *peer) bool {
	return p.paced && !p.pressing && !pr.reserved && pr.capacity > 0
}

// paceRoom is how many blocks the peer's bucket allows now.
func (p *Picker) paceRoom(pr *peer, now time.Time) int {
	r := paceShare * pr.capacity
	if !pr.paceAt.IsZero() && now.After(pr.paceAt) {
		pr.paceTokens += r * now.Sub(pr.paceAt).Seconds()
	}
	pr.paceAt = now
	pr.paceTokens = min(pr.paceTokens, max(r*paceBurst, BlockSize))
	n := int(pr.paceTokens / BlockSize)
	if n <= 0 {
		pr.paceBound = true
	}
	return n
}

// paceHeld notes that the pacing held the peer back: the caller should ask again once
// its bucket holds another block (PaceWake), or a peer with nothing outstanding would
// wait for an unrelated event.
func (p *Picker) paceHeld(pr *peer, now time.Time) {
	w := now.Add(time.Duration(BlockSize / (paceShare * pr.capacity) * float64(time.Second)))
	if p.paceWake.IsZero() || w.Before(p.paceWake) {
		p.paceWake = w
	}
}

// PaceWake returns, and forgets, the earliest time a peer that the pacing held back since
// the last call may be asked for more; zero when none was held back.
func (p *Picker) PaceWake() time.Time {
	w := p.paceWake
	p.paceWake = time.Time{}
	return w
}

// paceSpend takes n blocks from the peer's bucket.
func (p *Picker) paceSpend(pr *peer, n int) { pr.paceTokens -= float64(n * BlockSize) }

// Capacity: what a peer delivers when nothing holds it back. Known once two ticks in a
// row, after the connection's first, measure rates within capAgree of each other, the
// peer neither held back by the pacing nor reserved in them: a connection's first second
// is no measure (libtorrent sends it at 1.5 times its limit, from the quota it lends
// ahead), nor is a TCP connection still ramping up (a far seeder's, over a long round
// trip). Paced from a capacity measured too high, a libtorrent seeder was asked for three
// quarters of its limit and its bank never grew for the next seek; from one too low, a far
// seeder's link stayed paced at half of its slow start.
const (
	capAgree      = 1.25
	capacityTicks = 3 // the first tick, then two that agree
)

// updateCapacity follows the peer's measured rate (PeerRate). Before the capacity is
// known, see capAgree. After, it is the rate of a tick in which the peer was neither held
// back nor reserved, or, when that is less, 0.9 of the capacity before, so a lull does
// not pace the next burst of reading to nothing. The other ticks say nothing of what it
// can do: held back or reserved, it delivers less than it could, or a seek's burst on top
// of that (from a libtorrent seeder, what its bank held).
func (pr *peer) updateCapacity(rate float64) {
	bound := pr.paceBound || pr.reserved
	pr.paceBound = false
	if bound {
		return
	}
	if pr.capacity > 0 {
		pr.capacity = max(rate, 0.9*pr.capacity)
		return
	}
	prev := pr.capLast
	pr.capLast = rate
	pr.capN++
	if pr.capN >= capacityTicks && min(rate, prev) > 0 && max(rate, prev) <= capAgree*min(rate, prev) {
		pr.capacity = max(rate, prev)
	}
}
