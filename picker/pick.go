package picker

import (
	"math"
	"slices"
	"time"
)

// Pick returns up to limit new requests for the peer and records them as outstanding. The
// caller calls it when the peer has unchoked us and has free pipeline slots; calling it
// means the peer no longer chokes us.
func (p *Picker) Pick(id PeerID, limit int, now time.Time) []Block {
	pr := p.peers[id]
	if pr == nil || limit <= 0 {
		return nil
	}
	pr.choked = false
	if pr.snubbed {
		// One probe at a time, never a block another peer could finish a piece with: the
		// stalled peer's loss is then one late block per timeout.
		if len(pr.out) > 0 {
			return nil
		}
		out, _ := p.pickDue(id, pr, 1, now, nil)
		if p.background && !pr.reserved && len(out) == 0 {
			out = p.pickRarest(id, pr, 1, now, out)
		}
		return out
	}
	var out []Block
	if p.viewing && !p.pressing && !pr.reserved {
		// A viewer, not a copy (pace.go): the blocks a read waits for go first, as many
		// as the peer may take; after them the peer is asked for little, and paced.
		if p.waited != nil {
			out, _ = p.pickDueOf(id, pr, limit, now, out, p.waited)
		}
		n := len(out)
		limit = min(limit, n+idleBackground(pr)-len(pr.out))
		if p.pacing(pr) {
			if room := p.paceRoom(pr, now); n+room < limit {
				limit = n + room
				p.paceHeld(pr, now)
			}
			defer func() { p.paceSpend(pr, len(out)-n) }()
		}
		if limit <= n {
			return out
		}
	}
	out, streaming := p.pickDue(id, pr, limit, now, out)
	if streaming && p.pressing && !pr.reserved && len(out) < limit {
		out = p.pickWindowTail(id, pr, limit, now, out)
	}
	if pr.reserved {
		// One background block now and then keeps a rate-limited peer's quota topped up
		// (reserve.go); none while it has anything outstanding.
		if p.background && len(pr.out) == 0 && len(out) < limit && !now.Before(pr.trickleAt) {
			n := len(out)
			out = p.pickPartial(id, pr, n+1, now, out)
			out = p.pickRarest(id, pr, n+1, now, out)
			if len(out) > n {
				pr.trickleAt = now.Add(reserveTrickle)
			}
		}
		return out
	}
	if p.background {
		bl := limit
		switch {
		case streaming:
			// A reader waits for pieces this peer has: background blocks would queue
			// ahead of the reader's next requests at the peer and take its bandwidth, so
			// they only keep an otherwise idle pipeline warm.
			bl = min(limit, len(out)+max(0, streamingBackground-len(pr.out)))
		case len(p.wants) > 0 || p.viewing:
			// A reader is about but waits for nothing this peer has: the next read may be
			// a seek, and a peer serves our requests in order (libtorrent even reads them
			// into its send buffer, out of reach of a cancel). Background requests there
			// are kept to what it delivers in idleHorizon and a round trip, so a seek
			// waits behind no more.
			bl = min(limit, len(out)+max(0, idleBackground(pr)-len(pr.out)))
		}
		if pr.web && p.spreading() {
			out = p.pickUngiven(id, pr, bl, now, out)
		} else {
			out = p.pickPartial(id, pr, bl, now, out)
			if len(pr.suggested) > 0 {
				out = p.pickSuggested(id, pr, bl, now, out)
			}
			out = p.pickRarest(id, pr, bl, now, out)
		}
	}
	if len(out) < limit && p.endgame() {
		out = p.pickEndgame(id, pr, limit, now, out)
	}
	return out
}

// maxAllowedFast bounds the allowed-fast pieces remembered per peer (BEP 6 suggests 10; a
// peer may send more, we use the first ones).
const maxAllowedFast = 32

// PeerAllowedFast records that the peer lets us request piece i while it chokes us (BEP 6).
func (p *Picker) PeerAllowedFast(id PeerID, i int) {
	pr := p.peers[id]
	if pr == nil || i < 0 || i >= p.NumPieces() || len(pr.allowed) >= maxAllowedFast {
		return
	}
	if pr.allowed == nil {
		pr.allowed = make(map[int]struct{})
	}
	pr.allowed[i] = struct{}{}
}

// PickAllowedFast is Pick for a peer that chokes us: only blocks of the pieces it allowed
// (PeerAllowedFast) that it has, due ones first. Unlike Pick it leaves the peer choked, so
// due blocks are not planned on it beyond these.
func (p *Picker) PickAllowedFast(id PeerID, limit int, now time.Time) []Block {
	pr := p.peers[id]
	if pr == nil || limit <= 0 || len(pr.allowed) == 0 || pr.snubbed {
		return nil
	}
	pr.onlyAllowed = true
	defer func() { pr.onlyAllowed = false }()
	out, _ := p.pickDue(id, pr, limit, now, nil)
	if p.background && !pr.reserved {
		out = p.pickPartial(id, pr, limit, now, out)
		out = p.pickRarest(id, pr, limit, now, out)
	}
	return out
}

// blockingPieces is how many of the earliest due pieces count as blocking a reader once
// they are due: the one under the read and the next, which a sequential reader reaches
// within a read or two.
const blockingPieces = 2

// streamingBackground is how many requests a peer may have outstanding before background
// pieces get none, while it has pieces a reader is waiting for.
const streamingBackground = 2

// idleHorizon bounds the background requests at a peer while a reader is about and
// nothing is due: a seek then waits for at most this much of the peer's time, once what is
// on the wire has come.
const idleHorizon = 0.1 // seconds

// idleBackground is how many background requests the peer may have outstanding while a
// reader is about and nothing is due: idleHorizon of its rate plus a round trip's worth
// (the bandwidth-delay product, without which a distant peer would idle between our
// requests), at least streamingBackground.
func idleBackground(pr *peer) int {
	return max(streamingBackground, int(rate(pr)*(idleHorizon+pr.rtt.Seconds())/BlockSize))
}

// pickDue picks blocks of due pieces; streaming tells whether the peer has any due piece
// that is not complete yet.
func (p *Picker) pickDue(id PeerID, pr *peer, limit int, now time.Time, out []Block) (_ []Block, streaming bool) {
	return p.pickDueOf(id, pr, limit, now, out, nil)
}

// pickDueOf is pickDue for the due pieces keep accepts (all when keep is nil).
func (p *Picker) pickDueOf(id PeerID, pr *peer, limit int, now time.Time, out []Block, keep func(i int) bool) (_ []Block, streaming bool) {
	// The blocks a read waits for (PreferBlocks) of every due piece first: a read over two
	// pieces must not find its blocks of the second behind the rest of the first.
	if len(p.hot) > 0 {
		for _, d := range p.due {
			if len(out) >= limit {
				break
			}
			h, ok := p.hot[d.piece]
			if !ok || !pr.hasPiece(d.piece) || keep != nil && !keep(d.piece) {
				continue
			}
			ps := p.partial[d.piece]
			if ps == nil {
				if !p.admits(d.piece) {
					continue
				}
				ps = p.start(d.piece)
			}
			for b := h.lo; len(out) < limit && ps.free > 0 && b <= h.hi && b < len(ps.blocks); b++ {
				if bs := &ps.blocks[b]; !bs.got && bs.n == 0 {
					out = append(out, p.request(id, pr, d.piece, ps, b, now))
				}
			}
		}
	}
	// A reserved peer works ahead only while a read is blocked (reserve.go).
	horizon := time.Time{}
	if pr.reserved && (len(p.due) == 0 || now.Before(p.due[0].due)) {
		horizon = now.Add(reserveAhead)
	}
	for k, d := range p.due {
		if len(out) >= limit || !horizon.IsZero() && d.due.After(horizon) {
			break
		}
		i := d.piece
		if !pr.hasPiece(i) || keep != nil && !keep(i) {
			continue
		}
		streaming = true
		// The earliest due pieces, once due, have a reader blocked on them.
		blocking := k < blockingPieces && !now.Before(d.due)
		ps := p.partial[i]
		free := p.geo.numBlocks(i)
		if ps != nil {
			free = ps.free
		}
		if free > 0 {
			if k := p.share(id, pr, i, free, limit-len(out)); k > 0 {
				if ps == nil {
					if !p.admits(i) {
						continue
					}
					ps = p.start(i)
				}
				out = p.takeFree(id, pr, i, ps, k, now, out)
			}
		}
		if ps != nil && now.After(d.due) && len(out) < limit {
			var blockedSince time.Time
			if blocking {
				blockedSince = d.due
			}
			out = p.duplicate(id, pr, i, ps, limit, blockedSince, now, out)
		}
	}
	return out, streaming
}

// tailLead is how far ahead of now a due piece must be, beyond one and a half times the
// time the peer takes to deliver it (a round trip and its queue at its rate), for
// pickWindowTail to give its blocks to a peer that share passed over. The margin is for a
// copy that speeds up: its pieces come due sooner than they were.
const tailLead = 500 * time.Millisecond

// pickWindowTail fills the rest of the peer's pipeline with free blocks of the latest due
// pieces it has, last first, while reads press (a copy). share hands a piece's blocks to
// the peers that finish them first, which is right for the pieces a read is about to
// need but starves a peer whose rate is not known yet or was measured while we asked it
// for little: a far, fast seeder in TCP's slow start delivers only what we ask, so it is
// measured slow, so share asks it for little, and it stays slow for seconds (the WAN lab's
// 8 MiB/s link 200 ms away idled for four seconds of a copy). The end of the window is
// needed too and is due seconds later; the peer works from there toward the faster peers,
// which work from the front, and its pipeline (sized by the caller from its rate) grows
// as it delivers. A piece still under a peer's blocks when a read reaches it is copied to
// others like any late piece (duplicate).
//
// A block cancelled at this peer lately is not asked of it again here: the cancel may
// have come too late (a far peer has a round trip of blocks on the wire, libtorrent half
// a megabyte in its send buffer), and the block would then come twice, once for each
// request.
func (p *Picker) pickWindowTail(id PeerID, pr *peer, limit int, now time.Time, out []Block) []Block {
	queued := len(pr.out)
	for k := len(p.due) - 1; k >= 0 && len(out) < limit; k-- {
		d := p.due[k]
		i := d.piece
		if !pr.hasPiece(i) {
			continue
		}
		ps := p.partial[i]
		free := p.geo.numBlocks(i)
		if ps != nil {
			free = ps.free
		}
		if free == 0 {
			continue
		}
		// The piece's blocks behind the peer's queue, the ones asked here included.
		queue := time.Duration(0)
		if pr.rate > 0 {
			queue = seconds(float64((queued+min(free, limit-len(out)))*BlockSize) / pr.rate)
		}
		if !d.due.After(now.Add(tailLead + 3*(pr.rtt+queue)/2)) {
			break // the pieces before it are due sooner still
		}
		if ps == nil {
			if !p.admits(i) {
				continue
			}
			ps = p.start(i)
		}
		n := len(out)
		for b := ps.cursor; len(out) < limit && ps.free > 0 && b < len(ps.blocks); b++ {
			bs := &ps.blocks[b]
			if bs.got || bs.n > 0 {
				continue
			}
			if _, ok := pr.cancelled[blockKey{int32(i), int32(b)}]; ok {
				continue
			}
			out = append(out, p.request(id, pr, i, ps, b, now))
		}
		queued += len(out) - n
	}
	return out
}

func (p *Picker) pickPartial(id PeerID, pr *peer, limit int, now time.Time, out []Block) []Block {
	return p.pickPartialOf(id, pr, limit, now, out, nil)
}

// pickPartialOf is pickPartial for the started pieces keep admits (all of them when nil).
func (p *Picker) pickPartialOf(id PeerID, pr *peer, limit int, now time.Time, out []Block, keep func(i int) bool) []Block {
	for _, i := range p.partialOrder {
		if len(out) >= limit {
			break
		}
		ps := p.partial[i]
		if ps.free == 0 || !pr.hasPiece(i) || !p.bgWanted(i) || keep != nil && !keep(i) {
			continue
		}
		if _, due := p.dueAt[i]; due {
			continue // stage 1 decided who gets its blocks
		}
		out = p.takeFree(id, pr, i, ps, limit-len(out), now, out)
	}
	return out
}

func (p *Picker) pickRarest(id PeerID, pr *peer, limit int, now time.Time, out []Block) []Block {
	for len(out) < limit {
		i := p.rarestFor(pr)
		if i < 0 || !p.admits(i) {
			break
		}
		out = p.takeFree(id, pr, i, p.start(i), limit-len(out), now, out)
	}
	return out
}

// rarestFor returns the candidate piece with the lowest availability that the peer has, or -1.
func (p *Picker) rarestFor(pr *peer) int {
	from := 1
	if pr.all {
		from = 0 // pieces only have-all peers announce sit in bucket 0
	} else if pr.interest == 0 {
		return -1 // it has nothing we lack: spare the scan
	}
	for a := from; a < len(p.rare.buckets); a++ {
		for _, i := range p.rare.buckets[a] {
			if pr.hasPiece(int(i)) {
				return int(i)
			}
		}
	}
	return -1
}

// takeFree requests up to k free blocks of piece i from the peer: its preferred blocks
// first (PreferBlocks), then lowest first.
func (p *Picker) takeFree(id PeerID, pr *peer, i int, ps *pieceState, k int, now time.Time, out []Block) []Block {
	if h, ok := p.hot[i]; ok {
		for b := max(h.lo, ps.cursor); k > 0 && ps.free > 0 && b <= h.hi && b < len(ps.blocks); b++ {
			if bs := &ps.blocks[b]; !bs.got && bs.n == 0 {
				out = append(out, p.request(id, pr, i, ps, b, now))
				k--
			}
		}
	}
	for k > 0 && ps.free > 0 && ps.cursor < len(ps.blocks) {
		bs := &ps.blocks[ps.cursor]
		if !bs.got && bs.n == 0 {
			out = append(out, p.request(id, pr, i, ps, ps.cursor, now))
			k--
		}
		ps.cursor++
	}
	return out
}

// rate is the peer's rate for planning, in bytes per second.
func rate(pr *peer) float64 {
	if pr.rate > 0 {
		return pr.rate
	}
	return unknownRate
}

// share is how many of the free blocks of due piece i the peer should take now (at most k).
// Think of each unchoked peer having the piece as a lane that finishes its j-th further block
// at its round trip plus (queued bytes + j*BlockSize) / rate: a distant peer's first block
// comes a round trip later than a near one's, whatever its rate. Handing every free block to the lane that would
// finish it first (which minimises when the piece completes) gives a lane exactly the blocks
// whose finish times are among the `free` smallest over all lanes. So the peer's j-th block
// is its if j plus the blocks other lanes finish strictly earlier is at most free. Ties go to
// the asking peer: it is ready now, the others may not be. This spreads a piece over idle
// peers by rate and keeps a slow peer off it while faster peers will have room soon.
func (p *Picker) share(id PeerID, pr *peer, i, free, k int) int {
	if p.naiveDue {
		return min(k, free)
	}
	type lane struct{ rate, queued, rtt float64 }
	var others []lane
	for qid, q := range p.peers {
		if qid == id || q.choked || !q.hasPiece(i) {
			continue
		}
		others = append(others, lane{rate(q), float64(len(q.out) * BlockSize), q.rtt.Seconds()})
	}
	r, queued, rtt := rate(pr), float64(len(pr.out)*BlockSize), pr.rtt.Seconds()
	takes := func(j int) bool {
		t := rtt + (queued+float64(j*BlockSize))/r
		n := j
		for _, o := range others {
			x := ((t-o.rtt)*o.rate - o.queued) / BlockSize
			if x > 1 {
				n += int(math.Ceil(x)) - 1
			}
			if n > free {
				return false
			}
		}
		return true
	}
	// takes is monotone in j: binary search the largest j in [0, min(k, free)].
	lo, hi := 0, min(k, free)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if takes(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// duplicate requests blocks of piece i that are outstanding at exactly one other peer a
// second time, where this peer is expected to deliver before that one: the holder's estimate
// is its place in the queue when asked at its current rate, so a stalled holder (whose
// measured rate falls) or one that is very late is overtaken, and a busy one that is on time
// is not.
//
// For a piece a reader is blocked on, every peer that has it gets a copy (up to maxCopies)
// without that estimate (copyBlocking): seeders that serve in turns (aria2 with an upload
// limit answers once a second, libtorrent's hands out quota in 500 ms ticks) make
// estimates useless at this scale, and whichever peer's turn comes first then delivers;
// the others are cancelled. It costs a few duplicate blocks per read.
//
// blockedSince is when the piece became due if a reader is blocked on it, else zero.
func (p *Picker) duplicate(id PeerID, pr *peer, i int, ps *pieceState, limit int, blockedSince, now time.Time, out []Block) []Block {
	if p.noDuplicates {
		return out
	}
	if !blockedSince.IsZero() {
		return p.copyBlocking(id, pr, i, ps, limit, blockedSince, now, out)
	}
	for bi := range ps.blocks {
		if len(out) >= limit {
			break
		}
		bs := &ps.blocks[bi]
		if bs.got || bs.n != 1 || bs.holds(id) {
			continue
		}
		eta := seconds(float64((len(pr.out)+1)*BlockSize) / rate(pr))
		r := bs.reqs[0]
		if d, _, ok := p.holderTime(r); ok {
			left := r.since.Add(d).Sub(now)
			if left > 0 && eta >= left {
				continue
			}
			// Somewhat late is normal (latency, rate jitter); only a block late by as much
			// as it was expected to take, or a second, is given up on.
			if left <= 0 && -left < max(d, time.Second) {
				continue
			}
		}
		out = append(out, p.request(id, pr, i, ps, bi, now))
	}
	return out
}

// copyCand is a block copyBlocking may copy, and when its holders are expected to deliver it.
type copyCand struct {
	bi      int
	eta     time.Time // when the earliest holder sends it, by its queue and rate
	arrives time.Time // the same plus that holder's round trip
}

// copyBlocking is duplicate for a piece a reader is blocked on: the peer gets a copy of
// every block outstanding elsewhere (up to maxCopies, one more for a reserved peer), those
// their holders are expected to deliver last first. A peer serves our requests in order, so
// its copies then start where the other peers' queues end, and the peers meet in the
// middle instead of two of them sending the same first blocks: libtorrent reads what we
// ask into a send buffer a cancel cannot reach, and a seeder paced by quota ticks sends a
// burst of its queue's head at each tick, so a copy near the head of two queues comes twice.
func (p *Picker) copyBlocking(id PeerID, pr *peer, i int, ps *pieceState, limit int, blockedSince, now time.Time, out []Block) []Block {
	cs := p.copyScratch[:0] // called at every refill while a read waits: no allocation
	for bi := range ps.blocks {
		bs := &ps.blocks[bi]
		if bs.got || bs.n == 0 || bs.holds(id) || int(bs.n) >= maxCopies && !(int(bs.n) == maxCopies && (pr.reserved || p.outpaces(pr, bs))) {
			continue
		}
		var eta, arrives time.Time
		for k, r := range bs.reqs[:bs.n] {
			d, rtt, _ := p.holderTime(r)
			e := r.since.Add(d)
			if k == 0 || e.Before(eta) {
				eta = e
			}
			if a := e.Add(rtt); k == 0 || a.Before(arrives) {
				arrives = a
			}
		}
		cs = append(cs, copyCand{bi, eta, arrives})
	}
	slices.SortStableFunc(cs, func(a, b copyCand) int { return b.eta.Compare(a.eta) })
	// own is when this peer would deliver the next block it is asked for; judge tells
	// whether copyPays decides (a copy whose estimates hold, before copyPatience).
	own, per := now.Add(pr.rtt+seconds(float64((len(pr.out)+1)*BlockSize)/rate(pr))), seconds(BlockSize/rate(pr))
	judge := p.pressing && estimates(pr) && now.Sub(blockedSince) < copyPatience
	for _, c := range cs {
		if len(out) >= limit {
			break
		}
		if judge && !copyPays(c.arrives, own, now) {
			continue
		}
		out = append(out, p.request(id, pr, i, ps, c.bi, now))
		own = own.Add(per)
	}
	p.copyScratch = cs[:0]
	return out
}

// outpaces tells whether the peer has sent us a block since the block bs was asked of
// each of its holders, none of which has sent anything since: it gets one copy beyond
// maxCopies. A rate-limited libtorrent seeder sends only at its quota ticks, and a fresh
// mount's first read had its blocks copied at once to the three seeders still waiting
// for their tick, while the fourth, which had quota and had sent its share at once, was
// left with nothing to do: the read waited 120 ms for the next tick.
func (p *Picker) outpaces(pr *peer, bs *blockState) bool {
	for _, r := range bs.reqs[:bs.n] {
		if !pr.lastGot.After(r.since) {
			return false
		}
		if h := p.peers[r.peer]; h != nil && h.lastGot.After(r.since) {
			return false
		}
	}
	return true
}

// copyPatience is how long a read may wait for a piece before copyPays no longer holds
// its copies back: a copy's reads wait briefly, behind a window its peers fill at rates
// the estimates know; a read that has waited this long (a seek on a fresh mount, whose
// peers are still connecting and ramping up, their rates unknown or measured in slow
// start) takes the first peer to answer, as a viewer's does. Holding those back made the
// WAN lab's fresh 4 MiB seeks take 1.64 s instead of 1.44.
const copyPatience = time.Second

// copyLate is how long past its holders' expected arrival a block a copy waits for may be
// before any peer copies it, whatever that peer's own estimate.
const copyLate = 250 * time.Millisecond

// estimates tells whether copyPays should judge the peer's copies by its estimates: once
// its rate is measured, or while it has sent us nothing (no round trip measured either)
// and is not reserved. A peer that has answered, or the one kept for due blocks, copies at
// once before its rate is known: its estimate would come from a placeholder rate, and a
// seeder that sends in quota ticks answers whenever its turn comes. One not heard from yet
// (over a WAN, a far seeder still connecting) waits for the estimates or copyPatience.
func estimates(pr *peer) bool {
	return pr.rate > 0 || pr.rtt == 0 && !pr.reserved
}

// copyPays tells whether, in a copy (reads press), a block of a piece the reader is blocked
// on is worth asking a second peer for: that peer would deliver it (at own) before its
// holders are expected to (arrives), or the holders are late by copyLate. A copy reads
// ahead, so a blocked read there is one late piece among many in flight: on links whose
// rates the estimates know, a copy at every peer was each block twice on the wire whenever
// a cancel came too late, a tenth of the WAN lab's copy. On a fresh mount reads that wait
// press before any rate is known, and holding a seek's copies back on estimates from a
// placeholder rate left it waiting for one qBittorrent seeder's quota tick (fresh 256 KiB
// seeks: 152 ms median before copyPays, 441 ms with it): see estimates.
func copyPays(arrives, own, now time.Time) bool {
	return own.Before(arrives) || now.After(arrives.Add(copyLate))
}

// holderTime is how long a request's holder was expected to take to send the block: its
// place in the holder's queue when asked, at the holder's rate; and the holder's round
// trip. ok is false (and both 0) when the holder is gone.
func (p *Picker) holderTime(r reqSlot) (d, rtt time.Duration, ok bool) {
	holder := p.peers[r.peer]
	if holder == nil {
		return 0, 0, false
	}
	return seconds(float64((int(r.ahead)+1)*BlockSize) / rate(holder)), holder.rtt, true
}

func seconds(s float64) time.Duration {
	if s > float64(math.MaxInt64/time.Second) {
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}

// endgame tells whether every wanted block is received or requested, so that duplicates may
// finish the download sooner.
func (p *Picker) endgame() bool {
	if !p.background {
		return false // overdue duplicates cover the due pieces; nothing else is fetched
	}
	from := 1
	if p.haveAll > 0 {
		from = 0
	}
	if p.rare.size(from) > 0 {
		return false
	}
	for _, d := range p.due {
		if ps := p.partial[d.piece]; ps == nil || ps.free > 0 {
			return false
		}
	}
	if p.partialFree > 0 {
		for _, i := range p.partialOrder {
			if p.partial[i].free > 0 && p.bgWanted(i) {
				return false
			}
		}
	}
	return true
}

func (p *Picker) pickEndgame(id PeerID, pr *peer, limit int, now time.Time, out []Block) []Block {
	for _, i := range p.partialOrder {
		if len(out) >= limit {
			break
		}
		if !pr.hasPiece(i) {
			continue
		}
		if _, due := p.dueAt[i]; !due && !p.bgWanted(i) {
			continue
		}
		out = p.duplicate(id, pr, i, p.partial[i], limit, time.Time{}, now, out)
	}
	return out
}
