package picker

import (
	"slices"
	"time"

	"torrentfs/bitfield"
)

// PeerAdd registers a connected peer that has nothing yet and has us choked.
func (p *Picker) PeerAdd(id PeerID) {
	if _, ok := p.peers[id]; ok {
		return
	}
	p.peers[id] = &peer{
		has:    bitfield.New(p.NumPieces()),
		choked: true,
		out:    make(map[blockKey]struct{}),
	}
}

// PeerHave records a have message. It reports whether the peer became interesting.
func (p *Picker) PeerHave(id PeerID, i int) bool {
	pr := p.peers[id]
	if pr == nil || pr.all || i < 0 || i >= p.NumPieces() || pr.has.Has(i) {
		return false
	}
	before := p.interesting(pr)
	p.addAvail(pr, i)
	p.runMet(i)
	return !before && p.interesting(pr)
}

func (p *Picker) addAvail(pr *peer, i int) {
	pr.has.Set(i)
	p.avail[i]++
	p.rare.move(i, int(p.avail[i]-1), int(p.avail[i]), p.rng)
	if p.wanted(i) {
		pr.interest++
	}
}

func (p *Picker) dropAvail(pr *peer, i int) {
	pr.has.Clear(i)
	p.avail[i]--
	p.rare.move(i, int(p.avail[i]+1), int(p.avail[i]), p.rng)
	if p.wanted(i) {
		pr.interest--
	}
}

// PeerBitfield records a bitfield message (pieces are added to what the peer already
// announced; bf must cover the torrent's pieces).
func (p *Picker) PeerBitfield(id PeerID, bf bitfield.Bitfield) {
	pr := p.peers[id]
	if pr == nil || pr.all {
		return
	}
	if bf.Len() == p.NumPieces() && bf.All() {
		p.PeerHaveAll(id) // a seed: O(1) now and when it leaves
		return
	}
	for i := range min(bf.Len(), p.NumPieces()) {
		if bf.Has(i) && !pr.has.Has(i) {
			p.addAvail(pr, i)
		}
	}
}

// PeerHaveAll records a have-all message (BEP 6) or a bitfield with every piece; it is O(1)
// for a peer that announced nothing before.
func (p *Picker) PeerHaveAll(id PeerID) {
	pr := p.peers[id]
	if pr == nil || pr.all {
		return
	}
	if pr.has.Count() > 0 {
		for i := range p.NumPieces() {
			if pr.has.Has(i) {
				p.dropAvail(pr, i)
			}
		}
	}
	pr.all = true
	p.haveAll++
}

// PeerRemove forgets a disconnected peer. It returns the blocks it had outstanding, now free
// for others unless another copy of the request is still out.
func (p *Picker) PeerRemove(id PeerID) []Block {
	pr := p.peers[id]
	if pr == nil {
		return nil
	}
	freed := p.dropAll(id, pr)
	if pr.all {
		p.haveAll--
	} else {
		for i := range p.NumPieces() {
			if pr.has.Has(i) {
				p.dropAvail(pr, i)
			}
		}
	}
	if pr.web {
		p.webs = slices.DeleteFunc(p.webs, func(w *peer) bool { return w == pr })
	}
	delete(p.peers, id)
	return freed
}

// PeerChoked records that the peer choked us: every request outstanding at it is dropped
// (BEP 3 peers discard them; with BEP 6 the caller may instead wait for the rejects and call
// Rejected for each). It returns the dropped blocks. The next Pick for the peer means it
// unchoked us again.
func (p *Picker) PeerChoked(id PeerID) []Block {
	pr := p.peers[id]
	if pr == nil {
		return nil
	}
	pr.choked = true
	return p.dropAll(id, pr)
}

// PeerChokedFast records that a peer supporting BEP 6 choked us: it rejects each request it
// drops, so its requests stay outstanding until Rejected (or Received: an allowed-fast or
// already-queued block may still come). It only stops the peer from being counted on for
// due blocks.
func (p *Picker) PeerChokedFast(id PeerID) {
	if pr := p.peers[id]; pr != nil {
		pr.choked = true
	}
}

// PeerUnchoked records that the peer unchoked us, before the first Pick for it, so that due
// blocks are shared with it from then on. Pick implies it.
func (p *Picker) PeerUnchoked(id PeerID) {
	if pr := p.peers[id]; pr != nil {
		pr.choked = false
		pr.forgive(time.Time{}, true)
	}
}

// PeerRate records the peer's measured download rate in bytes per second; the due-piece
// stage and the request timeout use it.
func (p *Picker) PeerRate(id PeerID, bytesPerSec float64) {
	if pr := p.peers[id]; pr != nil {
		pr.rate = bytesPerSec
		pr.updateCapacity(bytesPerSec)
	}
}

// Outstanding is the number of requests the picker counts as outstanding at the peer.
func (p *Picker) Outstanding(id PeerID) int {
	if pr := p.peers[id]; pr != nil {
		return len(pr.out)
	}
	return 0
}

// Interesting tells whether the peer has a piece we want: one we lack and do not skip, or
// one a reader waits for. The caller sends interested/not interested on its changes.
func (p *Picker) Interesting(id PeerID) bool {
	pr := p.peers[id]
	return pr != nil && p.interesting(pr)
}

func (p *Picker) interesting(pr *peer) bool {
	if pr.all {
		return p.wantedCount > 0 || len(p.due) > 0
	}
	if pr.interest > 0 {
		return true
	}
	for _, d := range p.due {
		if pr.has.Has(d.piece) {
			return true
		}
	}
	return false
}

// dropAll drops every request outstanding at the peer and returns the blocks, sorted.
func (p *Picker) dropAll(id PeerID, pr *peer) []Block {
	if len(pr.out) == 0 {
		return nil
	}
	keys := make([]blockKey, 0, len(pr.out))
	for k := range pr.out {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmpKey)
	out := make([]Block, 0, len(keys))
	for _, k := range keys {
		p.unrequest(id, pr, k)
		out = append(out, p.block(k))
	}
	return out
}

func cmpKey(a, b blockKey) int {
	if a.piece != b.piece {
		return int(a.piece - b.piece)
	}
	return int(a.block - b.block)
}
