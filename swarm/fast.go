package swarm

// BEP 6 allowed fast, both ways: pieces a peer lets us request while it chokes us, and the
// set we grant a new peer so it can start before our choker gets to it. All on the loop.

import (
	"time"

	"torrentfs/swarm/wire"
)

const (
	// allowedFastGrant is how many pieces we let a peer with next to nothing fetch while we
	// choke it (BEP 6 suggests 10).
	allowedFastGrant = 10
	// allowedFastDepth bounds the requests at a choking peer for its allowed pieces.
	allowedFastDepth = 8
)

// onAllowedFast records that p lets us request piece i while it chokes us and asks for
// it at once if we are choked.
func (t *Torrent) onAllowedFast(p *peerConn, i uint32) {
	if !p.fast || int(i) >= t.info.NumPieces() {
		return // BEP 6: ignored rather than fatal, as clients disagree on what else to do
	}
	t.pk.PeerAllowedFast(p.key, int(i))
	if p.peerChoking {
		t.fillAllowedFast(p)
	}
}

// fillAllowedFast requests blocks of the pieces p allowed while it chokes us.
func (t *Torrent) fillAllowedFast(p *peerConn) {
	if !p.fast || !p.amInterested || t.err != nil || t.disk.writeBytes > maxWriteBacklog {
		return
	}
	now := time.Now()
	n := min(t.pipelineDepth(p, now), allowedFastDepth) - t.pk.Outstanding(p.key)
	if n <= 0 {
		return
	}
	for _, b := range t.pk.PickAllowedFast(p.key, n, now) {
		t.trace(p, "request (allowed fast)", b.Piece, b.Begin)
		p.send(wire.Message{ID: wire.Request, Index: uint32(b.Piece), Begin: uint32(b.Begin), Length: uint32(b.Length)})
	}
}

// grantAllowedFast sends a new peer that has almost nothing our allowed-fast set for its
// address (BEP 6), limited to pieces we have, once it has told us its pieces.
func (t *Torrent) grantAllowedFast(p *peerConn) {
	if !p.fast || p.granted != nil || !t.peers.has(p) || p.has.Count() >= allowedFastGrant || t.info.NumPieces() <= allowedFastGrant {
		return
	}
	p.granted = make(map[uint32]bool)
	for _, i := range wire.AllowedFastSet(allowedFastGrant, t.info.NumPieces(), p.addr.Addr(), t.ih) {
		if !t.ledger.Present(int(i)) {
			continue
		}
		p.granted[i] = true
		p.send(wire.Message{ID: wire.AllowedFast, Index: i})
	}
}
