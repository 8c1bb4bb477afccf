package picker

import (
	"slices"
	"time"
)

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
// from capacityTicks ticks.
func (p *Picker) pacing(pr *peer) bool {
	return p.paced && !p.pressing && !pr.reserved && pr.capN >= capacityTicks && pr.capacity > 0
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

// capacityTicks is how many ticks' rates the capacity is the median of. One tick's rate
// is not a capacity: a libtorrent seeder limited to 2 MiB/s sends a new connection's first
// second at 3.1 MB/s (the quota it lends ahead), and a tick with a seek in it carries what
// its bank held on top of its rate. Paced to half of such a tick, a seeder was asked for
// three quarters of its limit, and its bank never grew for the next seek.
const capacityTicks = 3

// updateCapacity follows the peer's measured rate (PeerRate): the median of the last
// capacityTicks rates measured while it was neither held back by the pacing nor reserved
// (each of those delivers less than it could, or bursts with a seek's blocks), or, when
// that is less, 0.9 of the capacity before, so a lull does not pace the next burst of
// reading to nothing.
func (pr *peer) updateCapacity(rate float64) {
	bound := pr.paceBound || pr.reserved
	pr.paceBound = false
	if bound {
		return
	}
	pr.capRates[pr.capN%capacityTicks] = rate
	pr.capN++
	n := min(pr.capN, capacityTicks)
	rs := pr.capRates
	slices.Sort(rs[:n])
	med := rs[(n-1)/2]
	if pr.capN > capacityTicks {
		med = max(med, 0.9*pr.capacity)
	}
	pr.capacity = med
}
