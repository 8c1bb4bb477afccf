package picker

import (
	"math/rand/v2"
	"slices"
	"time"

	"torrentfs/bitfield"
)

// PeerID names a peer; the caller assigns it and must not reuse it while the peer is known.
type PeerID int

// Block is one request: Length bytes at Begin within Piece.
type Block struct{ Piece, Begin, Length int }

// Request is a block requested from a peer.
type Request struct {
	Peer  PeerID
	Block Block
}

// Want asks for pieces First..Last (inclusive) by Due.
type Want struct {
	First, Last int
	Due         time.Time
}

const (
	// maxCopies bounds how many peers one block is requested from at once. Endgame and late
	// pieces use two; a piece a reader is blocked on may use three, since then the first
	// peer to answer decides how long the reader waits.
	maxCopies = 3
	// unknownRate is assumed for a peer whose rate was never reported: low, so an unmeasured
	// peer does not get urgent blocks ahead of measured ones, but not zero, so it still can.
	unknownRate = BlockSize
	// minTimeout and snubTimeout bound how long a request may stay outstanding.
	minTimeout  = 5 * time.Second
	snubTimeout = 60 * time.Second
)

// Picker is the request scheduler of one torrent. See the package doc for who may call it.
type Picker struct {
	geo geometry
	rng *rand.Rand
	// hot are the blocks of a piece to request before its others (PreferBlocks).
	hot map[int]blockRange

	have        bitfield.Bitfield
	haveCount   int
	skip        bitfield.Bitfield
	skipCount   int
	wantedCount int // pieces neither had nor skipped
	background  bool
	viewing     bool // a reader is about (SetViewing): background pipelines stay shallow
	pressing    bool // reads take about what we download (SetPressing): no pacing (pace.go)
	waited      func(i int) bool
	paced       bool // a reader is about: peers are paced below their capacity (pace.go)
	paceWake    time.Time

	avail   []int32 // per piece: peers announcing it by bitfield or have (have-all peers not counted)
	haveAll int     // peers that have every piece; they shift all availabilities equally
	webs    []*peer // the web seeds (PeerWeb)
	rare    rarity  // candidates: wanted, not started, not due

	partial      map[int]*pieceState
	partialOrder []int // started pieces, oldest first
	partialFree  int   // free blocks over all partial pieces

	peers map[PeerID]*peer

	wants map[int][]Want
	due   []duePiece        // pieces we lack that some owner wants, by (due, piece)
	dueAt map[int]time.Time // the same, by piece

	// gate, when set, is asked before a piece is started (see SetGate).
	gate func(piece int) bool

	copyScratch []copyCand // copyBlocking's candidates, reused

	// Switches for simulations that compare against simpler policies.
	naiveDue     bool // due blocks go to whoever asks first
	noDuplicates bool // no overdue or endgame duplicates
}

type peer struct {
	has      bitfield.Bitfield
	all      bool
	interest int // pieces it has (by bitfield/have) that we lack and do not skip
	rate     float64
	choked   bool
	// snubbed is set when a request to the peer expired and cleared when it delivers a
	// block: until then it gets one probing request at a time, so a stalled peer cannot
	// swallow the blocks freed from it again and again.
	snubbed bool
	lastGot time.Time // when it last sent us a block
	out     map[blockKey]struct{}
	// allowed are the pieces it lets us fetch while it chokes us (BEP 6 allowed fast);
	// onlyAllowed is set during a PickAllowedFast, so every stage of the pick sees the
	// peer as having those pieces only.
	allowed     map[int]struct{}
	onlyAllowed bool
	// The round-trip estimate (latency.go): the least request-to-block latency, less the
	// queue ahead of the request at the peer's rate, seen in the current window.
	rtt, nextRTT  time.Duration
	rttWindowEnds time.Time
	// What a cancel can still stop at the peer (preempt.go): the preemptive cancels sent
	// and the queue place each had, and the deepest place at which one was seen to fail,
	// over the current window and the last.
	cancelled                map[blockKey]cancelNote
	committed, nextCommitted int
	committedWindowEnds      time.Time
	// reserved peers get due blocks only, and a background block at most every
	// reserveTrickle (reserve.go), the next at trickleAt.
	reserved  bool
	trickleAt time.Time
	// refused are pieces the peer rejected a request for while it had us unchoked (BEP 6),
	// and when: they are not asked of it again for refuseFor, or until it unchokes us anew.
	refused map[int]time.Time
	// suggested are pieces it suggested we fetch from it (BEP 6), newest first (suggest.go).
	suggested []int
	// web marks a web seed (web.go); webNext is the piece after the last one it took
	// while spreading, -1 before any.
	web              bool
	runFrom, webNext int
	// Pacing (pace.go): the rate the peer delivers unhindered (and, until it is known,
	// the last unhindered tick's rate and how many there were), a token bucket in bytes
	// refilled at paceShare of it, and whether the bucket ran dry since the last PeerRate.
	capacity   float64
	capLast    float64
	capN       int
	paceTokens float64
	paceAt     time.Time
	paceBound  bool
}

type blockKey struct{ piece, block int32 }

func (pr *peer) hasPiece(i int) bool {
	if pr.onlyAllowed {
		if _, ok := pr.allowed[i]; !ok {
			return false
		}
	}
	if pr.refused != nil {
		if _, ok := pr.refused[i]; ok {
			return false
		}
	}
	return pr.all || pr.has.Has(i)
}

// New returns a Picker for a torrent of totalLength bytes in pieces of pieceLength (the
// last may be shorter), with nothing had, every piece wanted and background download on.
// seed fixes the random tie-break of rarest-first.
func New(pieceLength, totalLength int64, seed int64) *Picker {
	geo := newGeometry(pieceLength, totalLength)
	n := geo.numPieces
	p := &Picker{
		geo:         geo,
		rng:         rand.New(rand.NewPCG(uint64(seed), 0x70696365)),
		have:        bitfield.New(n),
		skip:        bitfield.New(n),
		wantedCount: n,
		background:  true,
		avail:       make([]int32, n),
		partial:     make(map[int]*pieceState),
		peers:       make(map[PeerID]*peer),
		wants:       make(map[int][]Want),
		dueAt:       make(map[int]time.Time),
		hot:         make(map[int]blockRange),
	}
	p.rare.init(n)
	order := p.rng.Perm(n)
	for _, i := range order {
		p.rare.push(i, 0)
	}
	return p
}

// candidate tells whether piece i belongs in the rarest-first buckets.
func (p *Picker) candidate(i int) bool {
	if p.have.Has(i) || p.skip.Has(i) {
		return false
	}
	if _, ok := p.partial[i]; ok {
		return false
	}
	_, due := p.dueAt[i]
	return !due
}

// refresh puts piece i into or out of the rarest-first buckets after its state changed.
func (p *Picker) refresh(i int) {
	in := p.rare.contains(i)
	switch c := p.candidate(i); {
	case c && !in:
		p.rare.insert(i, int(p.avail[i]), p.rng)
	case !c && in:
		p.rare.remove(i, int(p.avail[i]))
	}
}

// wanted tells whether piece i is still to be downloaded at all.
func (p *Picker) wanted(i int) bool { return !p.have.Has(i) && !p.skip.Has(i) }

// bgWanted tells whether piece i may be fetched by stages 2 and 3.
func (p *Picker) bgWanted(i int) bool { return p.background && p.wanted(i) }

// NumPieces is the number of pieces of the torrent.
func (p *Picker) NumPieces() int { return p.geo.numPieces }

// Have tells whether piece i is verified.
func (p *Picker) Have(i int) bool { return p.have.Has(i) }

// Done tells whether every piece not skipped is verified.
func (p *Picker) Done() bool { return p.wantedCount == 0 }

// SetBackground turns downloading of pieces nobody waits for on or off (off in the
// bounded-cache mode). Returns the outstanding requests that became useless; the caller
// sends cancel for them.
func (p *Picker) SetBackground(on bool) []Request {
	p.background = on
	return p.dropStale()
}

// SetViewing tells the picker whether a reader is about (reading, or likely to read again
// soon). While one is, a peer's background requests are kept to what it delivers in
// idleHorizon plus a round trip, so that the part of its queue a cancel can no longer
// reach (libtorrent reads up to 500 KiB of requests into its send buffer) holds little
// that a seek must wait behind.
func (p *Picker) SetViewing(on bool) { p.viewing = on }

// SetPressing tells the picker whether reads take about as much as we download: a copy,
// or a player catching up. Then every peer's pipeline is as deep as its rate deserves.
// Otherwise, while a reader is about (a viewer: paused, playing from a full window, or
// seeking), a peer that is not reserved is asked for the blocks reads wait for first and
// then for little, paced (pace.go): what it has queued when a seek comes is little, and a
// rate-limited seeder keeps quota for it.
func (p *Picker) SetPressing(on bool) { p.pressing = on }

// SetWaited installs a check of whether a read waits for piece i now. It must not call back
// into the Picker.
func (p *Picker) SetWaited(waited func(i int) bool) { p.waited = waited }

// SetGate installs a check asked once before a piece is started, that is before its first
// block is requested: a piece it refuses stays unstarted for now and is asked about again
// at the next Pick. The run loop uses it to keep the pieces being written within the
// cache's room. The gate must not call back into the Picker. nil admits every piece.
func (p *Picker) SetGate(gate func(piece int) bool) { p.gate = gate }

// admits asks the gate about piece i.
func (p *Picker) admits(i int) bool { return p.gate == nil || p.gate(i) }

// SetSkip excludes pieces first..last from background download (skip true) or includes them
// again. Returns the outstanding requests that became useless.
func (p *Picker) SetSkip(first, last int, skip bool) []Request {
	first, last = max(first, 0), min(last, p.NumPieces()-1)
	for i := first; i <= last; i++ {
		if p.skip.Has(i) == skip {
			continue
		}
		if !p.have.Has(i) {
			d := 1
			if skip {
				d = -1
			}
			p.wantedCount += d
			for _, pr := range p.peers {
				if !pr.all && pr.has.Has(i) {
					pr.interest += d
				}
			}
		}
		if skip {
			p.skip.Set(i)
			p.skipCount++
		} else {
			p.skip.Clear(i)
			p.skipCount--
		}
		p.refresh(i)
	}
	return p.dropStale()
}

// SetHave records that piece i is verified and stored. It returns the requests still
// outstanding for it (normally none: only when the piece came from elsewhere, e.g. a check of
// existing data); the caller may cancel them, and Received refuses their blocks.
func (p *Picker) SetHave(i int) []Request {
	if i < 0 || i >= p.NumPieces() || p.have.Has(i) {
		return nil
	}
	delete(p.hot, i)
	var dropped []Request
	if ps := p.partial[i]; ps != nil {
		dropped = p.forgetPiece(i, ps)
	}
	if p.wanted(i) {
		p.wantedCount--
		for _, pr := range p.peers {
			if !pr.all && pr.has.Has(i) {
				pr.interest--
			}
		}
	}
	p.have.Set(i)
	p.haveCount++
	if _, ok := p.dueAt[i]; ok {
		delete(p.dueAt, i)
		p.due = slices.DeleteFunc(p.due, func(d duePiece) bool { return d.piece == i })
	}
	p.refresh(i)
	return dropped
}

// PieceFailed records that piece i failed its hash check: every block of it is free again.
// Blaming the peers that sent it is the caller's business.
func (p *Picker) PieceFailed(i int) {
	ps := p.partial[i]
	if ps == nil || p.have.Has(i) {
		return
	}
	p.forgetPiece(i, ps)
	p.refresh(i)
}

// forgetPiece drops piece i's partial state and every request for it, which it returns.
func (p *Picker) forgetPiece(i int, ps *pieceState) []Request {
	var dropped []Request
	for bi := range ps.blocks {
		bs := &ps.blocks[bi]
		for _, r := range bs.reqs[:bs.n] {
			k := blockKey{int32(i), int32(bi)}
			if pr := p.peers[r.peer]; pr != nil {
				delete(pr.out, k)
			}
			dropped = append(dropped, Request{Peer: r.peer, Block: p.block(k)})
		}
	}
	p.partialFree -= ps.free
	delete(p.partial, i)
	p.partialOrder = slices.DeleteFunc(p.partialOrder, func(j int) bool { return j == i })
	sortRequests(dropped)
	return dropped
}

// Lost records that piece i, verified earlier, is gone again (evicted from a bounded cache):
// it is wanted again, due again if a reader still wants it, and may be requested.
func (p *Picker) Lost(i int) {
	if i < 0 || i >= p.NumPieces() || !p.have.Has(i) {
		return
	}
	p.have.Clear(i)
	p.haveCount--
	if p.wanted(i) {
		p.wantedCount++
		for _, pr := range p.peers {
			if !pr.all && pr.has.Has(i) {
				pr.interest++
			}
		}
	}
	p.rebuildDue()
	p.refresh(i)
}
