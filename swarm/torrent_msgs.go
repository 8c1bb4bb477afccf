package swarm

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/bitfield"
	"torrentfs/picker"
	"torrentfs/swarm/wire"
)

// floodLimit is how many requests beyond its queue a peer may send in one second before we
// hang up: some are races with our choke or with its own cancels (a reader seeking), a
// thousand a second is an attack.
const floodLimit = 1000

func remoteAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap
}

// handleMessage applies one message from a peer. It runs on the loop.
func (t *Torrent) handleMessage(p *peerConn, m wire.Message, buf *[]byte) {
	if m.Keepalive {
		return
	}
	switch m.ID {
	case wire.Bitfield, wire.HaveAll, wire.Have:
		// A v2 peer that now has pieces may answer hash requests waiting for one: ask at
		// once rather than at the next tick (a read may be waiting on them).
		defer t.retryHashAsks(p)
	}
	// BEP 3 wants the piece set first, but clients send the extension handshake, allowed
	// fast and port messages before it; what matters is that it precedes any have.
	first := p.pieceSetBy == 0
	switch m.ID {
	case wire.Bitfield, wire.HaveAll, wire.HaveNone, wire.Have:
		if first {
			p.pieceSetBy = m.ID
			defer t.grantAllowedFast(p) // once the piece set below is applied
		}
	}
	switch m.ID {
	case wire.Choke:
		p.peerChoking = true
		if p.fast {
			// BEP 6: each pending request gets an explicit reject.
			t.pk.PeerChokedFast(p.key)
		} else {
			// Without BEP 6 a choke silently discards our requests.
			t.pk.PeerChoked(p.key)
		}
	case wire.Unchoke:
		now := time.Now()
		if p.lastUnchoked.IsZero() {
			p.log.WithField("after", now.Sub(p.connectedAt).Round(time.Millisecond)).Debug("first unchoke")
		}
		if !t.unchokedOnce {
			// When data can first flow: against a seeder that unchokes on its own
			// clock (Transmission rechokes every 10 s) a slow first read is that wait,
			// and this line tells it apart from ours.
			t.unchokedOnce = true
			t.log.WithFields(logrus.Fields{
				"peer":          p.addr,
				"after_start":   now.Sub(t.startedAt).Round(time.Millisecond),
				"after_connect": now.Sub(p.connectedAt).Round(time.Millisecond),
			}).Info("first unchoke of the swarm")
		}
		p.peerChoking = false
		p.lastUnchoked = now
		t.pk.PeerUnchoked(p.key)
		if t.reserved == nil && t.cfg.ForReaders {
			// A mount keeps a reserved peer all along (reserve.go): choose it as
			// peers unchoke, before the background download has spent every
			// seeder's first quota, not at the next tick.
			t.updateReserve(p.lastUnchoked)
		}
		t.fill(p)
	case wire.Interested:
		p.peerInterested = true
		t.unchokeIfRoom(p)
	case wire.NotInterested:
		p.peerInterested = false
	case wire.Have:
		if int(m.Index) >= t.info.NumPieces() {
			t.disconnect(p, fmt.Sprintf("have for piece %d of %d", m.Index, t.info.NumPieces()))
			return
		}
		if !p.has.Has(int(m.Index)) {
			p.has.Set(int(m.Index))
			t.pk.PeerHave(p.key, int(m.Index))
			t.updateInterest(p)
			t.fill(p)
		}
	case wire.Bitfield:
		bf, err := bitfield.FromBytes(m.Bitfield, t.info.NumPieces())
		if err != nil {
			t.disconnect(p, err.Error())
			return
		}
		if !first {
			// aria2 sends have-none and then a bitfield, or two bitfields: take the union,
			// since a peer does not lose pieces.
			for i := range t.info.NumPieces() {
				if bf.Has(i) && !p.has.Has(i) {
					p.has.Set(i)
					t.pk.PeerHave(p.key, i)
				}
			}
			p.hasAll = p.has.All()
			t.updateInterest(p)
			t.fill(p)
			return
		}
		p.has = bf
		p.hasAll = bf.All()
		t.pk.PeerBitfield(p.key, bf)
		t.updateInterest(p)
	case wire.HaveAll, wire.HaveNone:
		if !p.fast {
			t.disconnect(p, m.ID.String()+" without the fast extension")
			return
		}
		// Like bitfields, aria2 may send these after another piece-set message; a have-all
		// then adds everything, a late have-none changes nothing.
		if m.ID == wire.HaveAll && !p.hasAll {
			p.hasAll = true
			p.has = bitfield.Full(t.info.NumPieces())
			t.pk.PeerHaveAll(p.key)
			t.updateInterest(p)
			t.fill(p)
		}
	case wire.Request:
		t.handleRequest(p, m)
	case wire.Cancel:
		p.cancelUpload(m.Index, m.Begin, m.Length)
	case wire.Piece:
		t.handleBlock(p, m, buf)
	case wire.Reject:
		if !p.fast {
			t.disconnect(p, "reject without the fast extension")
			return
		}
		// A peer that suggests pieces (a spreading seed) rejects to point us elsewhere.
		t.pk.Rejected(p.key, picker.Block{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)}, time.Now(), p.suggests > 0)
		if !p.peerChoking {
			t.fill(p)
		}
	case wire.Extended:
		if m.ExtID == 0 {
			h, err := wire.ParseExtHandshake(m.Payload)
			if err != nil {
				p.log.WithError(err).Debug("bad extension handshake")
				return
			}
			if h.Reqq > 0 {
				p.reqq = min(h.Reqq, maxPipeline)
			}
			if h.V != "" {
				p.clientName = h.V
			}
			t.noteExtHandshake(p, h)
			t.notePexHandshake(p, h, time.Now())
		} else if m.ExtID == metadataExtID {
			t.handleMetadata(p, m.Payload)
		} else if m.ExtID == pexExtID {
			t.handlePex(p, m.Payload, time.Now())
		}
	case wire.AllowedFast:
		t.onAllowedFast(p, m.Index)
	case wire.HashRequest:
		t.onHashRequest(p, m.Payload)
	case wire.Hashes:
		t.onHashes(p, m.Payload)
	case wire.HashReject:
		t.onHashReject(p, m.Payload)
	case wire.Port:
		// BEP 5: the peer runs a DHT node on this UDP port.
		if m.Port != 0 && t.disc.onDHTPort != nil && !p.sentDHTPort {
			p.sentDHTPort = true
			t.disc.onDHTPort(netip.AddrPortFrom(p.addr.Addr(), m.Port))
		}
	case wire.Suggest:
		if int(m.Index) < t.info.NumPieces() {
			p.suggests++
			t.pk.PeerSuggest(p.key, int(m.Index))
			if !p.peerChoking {
				t.fill(p)
			}
		}
	default:
		// Unknown messages are legal to ignore.
	}
}

// sendCancels cancels block b at the peers Received named (a web seed's copy is not
// cancelled: its bytes are dropped when they come).
func (t *Torrent) sendCancels(ids []picker.PeerID, b picker.Block) {
	for _, id := range ids {
		if q := t.peers.byKey[id]; q != nil {
			t.trace(q, "cancel", b.Piece, b.Begin)
			q.send(wire.Message{ID: wire.Cancel, Index: uint32(b.Piece), Begin: uint32(b.Begin), Length: uint32(b.Length)})
		}
	}
}

// unchokeIfRoom gives a newly interested peer a free upload slot at once, instead of making
// it wait up to ten seconds for the next choking round.
func (t *Torrent) unchokeIfRoom(p *peerConn) {
	if !p.amChoking {
		return
	}
	unchoked := 0
	for _, q := range t.peers.list {
		if !q.amChoking {
			unchoked++
		}
	}
	if unchoked < t.cfg.UploadSlots+1 {
		t.setChoking(p, false)
	}
}

// validRequest tells whether a request names bytes of the torrent that we serve. It reads
// only the torrent's geometry, so any goroutine may call it.
func (t *Torrent) validRequest(m wire.Message) bool {
	i := int(m.Index)
	return i < t.info.NumPieces() && m.Length != 0 && m.Length <= maxRequestLen &&
		int64(m.Begin)+int64(m.Length) <= t.info.PieceSize(i)
}

// serveRequest runs on p's reader goroutine: it queues the upload of a request that
// handleRequest would queue (a valid request of an unchoked peer for a piece we have, with
// room in its queue) without a round trip through the loop. It reads only what other
// goroutines may: the geometry, presence through t.gen, and p's queue and serving flag
// under p's lock, which the loop's choke takes too. Anything else (an invalid request,
// one to reject, an allowed-fast piece while choked, a flood) returns false and goes to
// the loop as before. A piece that goes between this check and the writer's read is
// caught there, by readBlock's seqlock, as for the loop's own check. A spreading seed
// (spread.go) leaves every request to the loop, which owns the record of who was given
// what; t.spread is set before the peers start and never changes.
func (t *Torrent) serveRequest(p *peerConn, m wire.Message) bool {
	return t.spread == nil && t.validRequest(m) && t.HasPiece(int(m.Index)) &&
		p.queueRequest(m.Index, m.Begin, m.Length)
}

// handleRequest queues an upload when the request is valid and the peer may have it.
func (t *Torrent) handleRequest(p *peerConn, m wire.Message) {
	i := int(m.Index)
	if !t.validRequest(m) {
		t.disconnect(p, fmt.Sprintf("bad request %d/%d+%d", m.Index, m.Begin, m.Length))
		return
	}
	reject := func() {
		if p.fast {
			p.send(wire.Message{ID: wire.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length})
		}
	}
	if (p.amChoking && !p.granted[m.Index]) || !t.ledger.Present(i) {
		reject()
		return
	}
	if t.spreadRefuses(p, i) {
		reject()
		if !p.spreadRefused.Has(i) {
			// Once per refused piece and peer: a peer asks for a piece block by block.
			if p.spreadRefused.Len() == 0 {
				p.spreadRefused = bitfield.New(t.info.NumPieces())
			}
			p.spreadRefused.Set(i)
			if s := t.spread.suggestion(); s >= 0 {
				p.send(wire.Message{ID: wire.Suggest, Index: uint32(s)})
			}
		}
		return
	}
	if p.queuedUploads.Load() >= maxUploadQueue {
		reject()
		if p.floodWarnings++; p.floodWarnings > floodLimit {
			t.disconnect(p, "request flood")
		}
		return
	}
	p.sendUpload(m.Index, m.Begin, m.Length)
}

// handleBlock takes a block that arrived: it goes to disk if the picker wanted it.
func (t *Torrent) handleBlock(p *peerConn, m wire.Message, buf *[]byte) {
	b := picker.Block{Piece: int(m.Index), Begin: int(m.Begin), Length: len(m.Block)}
	now := time.Now()
	cancel, complete, ok := t.pk.Received(p.key, b, now)
	t.trace(p, "block", b.Piece, b.Begin)
	if !ok {
		if buf != nil {
			t.blockPool.Put(buf)
		}
		return
	}
	if gap := now.Sub(p.lastBlock); !p.lastBlock.IsZero() && gap > p.longestGap {
		p.longestGap = gap
	}
	t.noteBatch(p, now)
	p.lastBlock = now
	p.snubbed = false
	p.blocksThisTick++
	t.countRoundTrip(p, now)
	t.sendCancels(cancel, b)
	t.queueWrite(p.key, b.Piece, b.Begin, m.Block, buf)
	if complete {
		t.pieceReceived(b.Piece)
	}
	t.fill(p)
}
