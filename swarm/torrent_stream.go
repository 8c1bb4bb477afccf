package swarm

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/picker"
	"torrentfs/swarm/mse"
	"torrentfs/swarm/wire"
)

// This file is what the reader package needs from a torrent: say which pieces a read head
// wants by when, wait for a piece, read verified bytes. The method set uses only standard
// and metainfo types so reader can declare it as an interface without importing swarm.

// SetWants replaces the wants of read head `head`: pieces first, first+1, ... are wanted by
// due[0], due[1], ... An empty due clears the head's wants. Requests for pieces that nobody
// wants any more are cancelled at their peers; in bounded-cache mode the wanted pieces are
// pinned so eviction cannot take them while the head needs them.
func (t *Torrent) SetWants(head int, first int, due []time.Time) {
	wants := make([]picker.Want, 0, 4)
	for k, d := range due {
		i := first + k
		if i < 0 || i >= t.info.NumPieces() {
			continue
		}
		if n := len(wants); n > 0 && wants[n-1].Due.Equal(d) && wants[n-1].Last == i-1 {
			wants[n-1].Last = i
			continue
		}
		wants = append(wants, picker.Want{First: i, Last: i, Due: d})
	}
	// Fire and forget: the reader's next call (ReadAt) queues behind this on the same
	// channel, so order is kept without a round trip per read.
	select {
	case t.events <- loopFunc(func() { t.setWants(head, first, len(due), wants) }):
	case <-t.closing:
	}
}

// setWants runs on the loop. The wanted pieces are soft-pinned (see cache.Ledger) so a
// bounded cache, or one shrunk by a full disk, keeps what a reader is about to read.
func (t *Torrent) setWants(head, first, n int, wants []picker.Want) {
	old := t.pins[head]
	if t.log.Logger.IsLevelEnabled(logrus.TraceLevel) && (old.first != first || old.n != n) {
		t.log.WithFields(logrus.Fields{"head": head, "first": first, "n": n}).Trace("wants")
	}
	// New pins first: unpinning can evict, and must not take what stays wanted.
	n = max(0, min(n, t.info.NumPieces()-first))
	for i := first; i < first+n; i++ {
		t.ledger.Pin(i, false)
	}
	for i := old.first; i < old.first+old.n; i++ {
		t.evict(t.ledger.Unpin(i, false))
	}
	if n > 0 {
		t.pins[head] = pinRange{first, n}
		// A reader is about from its first wants, not from the next tick that finds them:
		// a seek that opens, reads and closes between two ticks would otherwise leave the
		// peers unpaced, and the background then spends the quota the next seek needs
		// (picker/pace.go). Also reserves a peer if none is.
		t.updateReserve(time.Now())
	} else {
		delete(t.pins, head)
	}
	stale := t.pk.SetWants(head, wants)
	t.cancelRequests(stale)
	if t.ledger.Bound() > 0 {
		t.abandon(old, pinRange{first, n})
	}
	t.preempt(time.Now())
	t.fillAll()
}

// abandon frees the partly written pieces of a head's old range that nobody wants now: in
// a bounded cache their bytes count against the bound, and after a seek they might never
// be finished. They are fetched again if a reader comes back.
func (t *Torrent) abandon(old, now pinRange) {
	for i := old.first; i < old.first+old.n; i++ {
		if i >= now.first && i < now.first+now.n {
			continue
		}
		if _, due := t.pk.Due(i); due || !t.ledger.InFlight(i) || t.disk.verifying[i] {
			continue
		}
		if t.disk.pendingWrites[i] > 0 || t.disk.awaiting[i] {
			continue // its blocks are on their way to disk; let them land
		}
		t.discardPiece(i, nil)
	}
}

// urgentHorizon is how soon a due piece must be due for it to preempt background requests.
const urgentHorizon = 2 * time.Second

// preempt makes room for due pieces nobody was asked for yet: peers serve requests in
// order, so an urgent block queued behind a deep pipeline of background blocks, or of a
// readahead window a seek just left behind, would wait for all of them. Those requests
// are cancelled (a block already on its way is still accepted) and the pipelines refilled,
// urgent blocks first.
func (t *Torrent) preempt(now time.Time) {
	by := now.Add(urgentHorizon)
	if !t.pk.Starved(by) {
		return
	}
	for _, ws := range t.webSeeds {
		t.preemptWeb(ws, now, by)
	}
	for _, p := range t.peers.list {
		if p.peerChoking {
			continue
		}
		for _, b := range t.pk.Preemptible(p.key, now, by) {
			t.trace(p, "cancel", b.Piece, b.Begin)
			p.send(wire.Message{ID: wire.Cancel, Index: uint32(b.Piece), Begin: uint32(b.Begin), Length: uint32(b.Length)})
			t.pk.Cancelled(p.key, b)
		}
	}
}

// pinRange is the pieces a head has soft-pinned.
type pinRange struct{ first, n int }

// cancelRequests tells peers we no longer want blocks they were asked for.
func (t *Torrent) cancelRequests(rs []picker.Request) {
	for _, r := range rs {
		if p := t.peers.byKey[r.Peer]; p != nil {
			t.trace(p, "cancel", r.Block.Piece, r.Block.Begin)
			p.send(wire.Message{ID: wire.Cancel, Index: uint32(r.Block.Piece), Begin: uint32(r.Block.Begin), Length: uint32(r.Block.Length)})
		}
	}
}

// HasPiece tells whether piece i is verified and on disk, as of the loop's latest word.
func (t *Torrent) HasPiece(i int) bool {
	return i >= 0 && i < len(t.gen) && t.gen[i].Load()&1 == 1
}

// readBlock reads a block for an upload, from a peer's writer goroutine. The piece was
// present when the request was taken; the seqlock on t.gen tells whether it still was for
// the whole read (an eviction bumps it before punching the bytes).
func (t *Torrent) readBlock(piece, begin int, p []byte) error {
	g := t.gen[piece].Load()
	if g&1 == 0 {
		return errNotPresent
	}
	if err := t.store.ReadBlock(piece, begin, p); err != nil {
		return err
	}
	if t.gen[piece].Load() != g {
		return errNotPresent
	}
	return nil
}

var errNotPresent = errors.New("piece no longer present")

// Piece states reported by PieceStates.
const (
	PieceHave        = 'h' // verified, on disk
	PieceWanted      = 'w' // wanted by a read head (a read or its readahead), not yet here
	PieceDownloading = 'd' // being fetched for the background download
	PieceMissing     = '.'
)

// PieceStates describes pieces first..last (clamped to the torrent), one byte each (see
// PieceHave...), as the loop sees them now; nil when the torrent has stopped or ctx ends.
func (t *Torrent) PieceStates(ctx context.Context, first, last int) []byte {
	first, last = max(first, 0), min(last, t.info.NumPieces()-1)
	if last < first {
		return []byte{}
	}
	var out []byte
	if !t.do(ctx, func() {
		out = make([]byte, last-first+1)
		for i := first; i <= last; i++ {
			_, wanted := t.pk.Due(i)
			switch {
			case t.ledger.Present(i):
				out[i-first] = PieceHave
			case wanted:
				out[i-first] = PieceWanted
			case t.ledger.InFlight(i):
				out[i-first] = PieceDownloading
			default:
				out[i-first] = PieceMissing
			}
		}
	}) {
		return nil
	}
	return out
}

// PeerInfo is one connected peer as the status page shows it.
type PeerInfo struct {
	Addr      string        `json:"addr"`
	Client    string        `json:"client"`
	Transport string        `json:"transport"` // "tcp" or "utp"
	Encrypted bool          `json:"encrypted"` // RC4 (MSE/PE)
	Outgoing  bool          `json:"outgoing"`  // we dialed it
	Seed      bool          `json:"seed"`
	Progress  float64       `json:"progress"` // its share of the pieces, 0..1
	DownRate  float64       `json:"down_rate"`
	UpRate    float64       `json:"up_rate"`
	RTT       time.Duration `json:"rtt_ns"` // estimated round trip, 0 until measured
	// Flags: 'D' we download from it (unchoked and interested), 'd' we want to but it
	// chokes us, 'U' we upload to it, 'u' it wants to but we choke it, 'S' snubbed, 'R'
	// reserved for the blocks readers wait for (reserve.go).
	Flags string `json:"flags"`
}

// Peers lists the connected peers, fastest downloads first; nil when the torrent has
// stopped or ctx ends.
func (t *Torrent) Peers(ctx context.Context) []PeerInfo {
	var out []PeerInfo
	if !t.do(ctx, func() {
		out = make([]PeerInfo, 0, len(t.peers.list))
		n := t.info.NumPieces()
		for _, p := range t.peers.list {
			pi := PeerInfo{
				Addr: p.addr.String(), Client: p.clientName, Transport: "tcp",
				Encrypted: connEncryption(p.conn) == mse.RC4, Outgoing: p.pex.outgoing,
				Seed:     p.hasAll || n > 0 && p.has.Count() == n,
				DownRate: p.downRate.rate, UpRate: p.upRate.rate, RTT: t.pk.RTT(p.key),
			}
			if ra := p.conn.RemoteAddr(); ra != nil && ra.Network() == "udp" {
				pi.Transport = "utp"
			}
			switch {
			case pi.Seed:
				pi.Progress = 1
			case n > 0:
				pi.Progress = float64(p.has.Count()) / float64(n)
			}
			var f []byte
			switch {
			case p.amInterested && !p.peerChoking:
				f = append(f, 'D')
			case p.amInterested:
				f = append(f, 'd')
			}
			switch {
			case p.peerInterested && !p.amChoking:
				f = append(f, 'U')
			case p.peerInterested:
				f = append(f, 'u')
			}
			if p.snubbed {
				f = append(f, 'S')
			}
			if p == t.reserved {
				f = append(f, 'R')
			}
			pi.Flags = string(f)
			out = append(out, pi)
		}
	}) {
		return nil
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmp.Compare(b.DownRate, a.DownRate) })
	return out
}
