package picker

import (
	"slices"
	"time"
)

// pieceState is a started piece: where each of its blocks stands.
type pieceState struct {
	blocks []blockState
	free   int // blocks neither received nor requested
	got    int
	cursor int // no free block below this index; keeps the free-block search amortized O(1)
}

type blockState struct {
	got  bool
	n    uint8                  // requests outstanding, in reqs[:n]
	reqs [maxCopies + 1]reqSlot // the one past maxCopies is a reserved peer's (reserve.go) or one that outpaces the others (copyBlocking)
}

// holds tells whether the peer has a request out for the block.
func (bs *blockState) holds(id PeerID) bool {
	for _, r := range bs.reqs[:bs.n] {
		if r.peer == id {
			return true
		}
	}
	return false
}

type reqSlot struct {
	peer  PeerID
	since time.Time
	ahead int32 // requests the peer had outstanding before this one: its place in the queue
}

// reqOf is peer id's request for block k, if it has one out.
func (p *Picker) reqOf(id PeerID, k blockKey) (reqSlot, bool) {
	ps := p.partial[int(k.piece)]
	if ps == nil {
		return reqSlot{}, false
	}
	bs := &ps.blocks[k.block]
	for _, r := range bs.reqs[:bs.n] {
		if r.peer == id {
			return r, true
		}
	}
	return reqSlot{}, false
}

// start makes piece i partial.
func (p *Picker) start(i int) *pieceState {
	n := p.geo.numBlocks(i)
	ps := &pieceState{blocks: make([]blockState, n), free: n}
	p.partial[i] = ps
	p.partialOrder = append(p.partialOrder, i)
	p.partialFree += n
	p.refresh(i)
	return ps
}

func (p *Picker) block(k blockKey) Block {
	i, bi := int(k.piece), int(k.block)
	return Block{Piece: i, Begin: bi * BlockSize, Length: p.geo.blockSize(i, bi)}
}

// key checks that b is a block of the torrent's geometry and returns its key.
func (p *Picker) key(b Block) (blockKey, bool) {
	if b.Piece < 0 || b.Piece >= p.NumPieces() || b.Begin < 0 || b.Begin%BlockSize != 0 {
		return blockKey{}, false
	}
	bi := b.Begin / BlockSize
	if bi >= p.geo.numBlocks(b.Piece) || p.geo.blockSize(b.Piece, bi) != b.Length {
		return blockKey{}, false
	}
	return blockKey{int32(b.Piece), int32(bi)}, true
}

// request records block bi of piece i as requested from the peer.
func (p *Picker) request(id PeerID, pr *peer, i int, ps *pieceState, bi int, now time.Time) Block {
	bs := &ps.blocks[bi]
	if bs.n == 0 {
		ps.free--
		p.partialFree--
	}
	k := blockKey{int32(i), int32(bi)}
	// A block asked of the peer again may come for the new request: no sign of a failed
	// cancel then.
	delete(pr.cancelled, k)
	bs.reqs[bs.n] = reqSlot{peer: id, since: now, ahead: int32(len(pr.out))}
	bs.n++
	pr.out[k] = struct{}{}
	return p.block(k)
}

// unrequest forgets the peer's request for k; the block becomes free when no copy is left.
func (p *Picker) unrequest(id PeerID, pr *peer, k blockKey) {
	delete(pr.out, k)
	ps := p.partial[int(k.piece)]
	if ps == nil {
		return
	}
	bs := &ps.blocks[k.block]
	for j := 0; j < int(bs.n); j++ {
		if bs.reqs[j].peer == id {
			bs.n--
			bs.reqs[j] = bs.reqs[bs.n]
			bs.reqs[bs.n] = reqSlot{}
			break
		}
	}
	if bs.n == 0 && !bs.got {
		ps.free++
		p.partialFree++
		ps.cursor = min(ps.cursor, int(k.block))
	}
}

// Received records a block that arrived from the peer. ok is false when the block is not
// wanted (a piece we have or did not start, a block already received, bad geometry): the
// caller drops its data. cancel names the other peers holding a request for the same block;
// the caller sends them cancel. complete is true when every block of the piece is in: the
// caller verifies it and then calls SetHave or PieceFailed. A block arriving after its
// request expired, was rejected or was cancelled is still accepted.
func (p *Picker) Received(id PeerID, b Block, now time.Time) (cancel []PeerID, complete, ok bool) {
	k, valid := p.key(b)
	if !valid {
		return nil, false, false
	}
	ps := p.partial[b.Piece]
	if ps == nil {
		return nil, false, false
	}
	bs := &ps.blocks[k.block]
	if pr := p.peers[id]; pr != nil {
		pr.lastGot = now
		if len(pr.cancelled) > 0 {
			pr.cancelFailed(k, now)
		}
	}
	if bs.got {
		if pr := p.peers[id]; pr != nil {
			p.unrequest(id, pr, k)
		}
		return nil, false, false
	}
	if bs.n == 0 {
		ps.free--
		p.partialFree--
	}
	if pr := p.peers[id]; pr != nil {
		pr.snubbed = false
		for _, r := range bs.reqs[:bs.n] {
			if r.peer == id {
				pr.latencySample(now.Sub(r.since), int(r.ahead), b.Length, now)
			}
		}
	}
	bs.got = true
	ps.got++
	for _, r := range bs.reqs[:bs.n] {
		if r.peer != id {
			cancel = append(cancel, r.peer)
		}
		if pr := p.peers[r.peer]; pr != nil {
			delete(pr.out, k)
		}
	}
	bs.n = 0
	bs.reqs = [maxCopies + 1]reqSlot{}
	return cancel, ps.got == len(ps.blocks), true
}

// refuseFor is how long a piece the peer rejected a request for (while it had us
// unchoked) is not asked of it again. A seed that spreads its pieces (a fleet's origin)
// rejects a piece others already have; without this the block would go straight back to
// it, a round trip each time.
const refuseFor = 5 * time.Second

// Rejected records a reject-request (BEP 6) for the block: the request is gone and the block
// is free again unless another copy is out. With rest, unless the peer chokes us (a
// choking peer rejects what it will not serve), its piece is not asked of it again for
// refuseFor. The caller asks for rest where a reject means "not this piece" (a spreading
// seed, which suggests another); other peers reject for reasons of their own (aria2c's
// queue), and resting pieces there only slows a download.
func (p *Picker) Rejected(id PeerID, b Block, now time.Time, rest bool) {
	p.dropRequest(id, b)
	if pr := p.peers[id]; rest && pr != nil && !pr.choked && b.Piece >= 0 && b.Piece < p.geo.numPieces {
		if pr.refused == nil {
			pr.refused = map[int]time.Time{}
		}
		pr.refused[b.Piece] = now
	}
}

// forgive ends the peer's refusals older than refuseFor, or all of them.
func (pr *peer) forgive(now time.Time, all bool) {
	for i, at := range pr.refused {
		if all || now.Sub(at) >= refuseFor {
			delete(pr.refused, i)
		}
	}
	if len(pr.refused) == 0 {
		pr.refused = nil
	}
}

// Cancelled records that the caller cancelled its request for the block at the peer.
func (p *Picker) Cancelled(id PeerID, b Block) { p.dropRequest(id, b) }

func (p *Picker) dropRequest(id PeerID, b Block) {
	pr := p.peers[id]
	k, ok := p.key(b)
	if pr == nil || !ok {
		return
	}
	if _, out := pr.out[k]; out {
		p.unrequest(id, pr, k)
	}
}

// timeout is how long a request may stay outstanding at the peer: twice the time its queue
// takes to drain at its measured rate, at least minTimeout; a peer that delivered nothing
// measurable is given snubTimeout.
func (p *Picker) timeout(pr *peer) time.Duration {
	if pr.rate <= 0 {
		return snubTimeout
	}
	d := time.Duration(2 * float64((len(pr.out)+1)*BlockSize) / pr.rate * float64(time.Second))
	return min(max(d, minTimeout), snubTimeout)
}

// Expired frees the requests that have been outstanding longer than their peer's timeout and
// returns them, sorted by peer then block. Their peers count as snubbed until they deliver a
// block: Pick gives them one request at a time. The caller may leave them open at the peer: if a
// block arrives later it is still accepted.
func (p *Picker) Expired(now time.Time) []Request {
	var out []Request
	for id, pr := range p.peers {
		if pr.refused != nil {
			pr.forgive(now, false)
		}
		limit := p.timeout(pr)
		for k := range pr.out {
			if r, ok := p.reqOf(id, k); ok && now.Sub(r.since) > limit {
				out = append(out, Request{Peer: id, Block: p.block(k)})
			}
		}
	}
	sortRequests(out)
	for _, r := range out {
		p.dropRequest(r.Peer, r.Block)
		p.peers[r.Peer].snubbed = true
	}
	return out
}

// dropStale drops and returns the requests for pieces that are neither due nor wanted in the
// background any more.
func (p *Picker) dropStale() []Request {
	if p.background && p.skipCount == 0 {
		return nil // every piece is wanted: the common case costs nothing
	}
	var out []Request
	for id, pr := range p.peers {
		for k := range pr.out {
			i := int(k.piece)
			if _, due := p.dueAt[i]; due || p.bgWanted(i) {
				continue
			}
			out = append(out, Request{Peer: id, Block: p.block(k)})
		}
	}
	sortRequests(out)
	for _, r := range out {
		p.dropRequest(r.Peer, r.Block)
	}
	return out
}

func sortRequests(rs []Request) {
	slices.SortFunc(rs, func(a, b Request) int {
		if a.Peer != b.Peer {
			return int(a.Peer - b.Peer)
		}
		return CompareBlocks(a.Block, b.Block)
	})
}

// CompareBlocks orders blocks by piece, then offset (for slices.SortFunc).
func CompareBlocks(a, b Block) int {
	if a.Piece != b.Piece {
		return a.Piece - b.Piece
	}
	return a.Begin - b.Begin
}
