package swarm

import (
	"time"

	"torrentfs/picker"
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
	// Fire and forget: the reader's next call (WaitPiece) queues behind this on the same
	// channel, so order is kept without a round trip per read.
	select {
	case t.events <- loopFunc(func() { t.setWants(head, first, len(due), wants) }):
	case <-t.closing:
	}
}

// setWants runs on the loop.
func (t *Torrent) setWants(head, first, n int, wants []picker.Want) {
	old, bounded := t.pins[head], t.store.Bounded()
	if bounded {
		// New pins first: unpinning can evict, and must not take what stays wanted.
		n = max(0, min(n, t.info.NumPieces()-first))
		for i := first; i < first+n; i++ {
			t.store.Pin(i)
		}
		for i := old.first; i < old.first+old.n; i++ {
			t.store.Unpin(i)
		}
		if n > 0 {
			t.pins[head] = pinRange{first, n}
		} else {
			delete(t.pins, head)
		}
	}
	stale := t.pk.SetWants(head, wants)
	t.cancelRequests(stale)
	if bounded {
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
		if _, due := t.pk.Due(i); due || t.store.HasPiece(i) || !t.store.Dirty(i) || t.disk.verifying[i] {
			continue
		}
		if t.disk.pendingWrites[i] > 0 || t.disk.awaiting[i] {
			continue // its blocks are on their way to disk; let them land
		}
		t.pk.PieceFailed(i)
		t.disk.queue = append(t.disk.queue, diskJob{discard: true, piece: i})
	}
}

// urgentHorizon is how soon a due piece must be due for it to preempt background requests.
const urgentHorizon = 2 * time.Second

// preempt makes room for due pieces nobody was asked for yet: peers serve requests in
// order, so a due block queued behind a deep pipeline of background blocks would wait for
// all of them. Background requests are cancelled (a block already on its way is still
// accepted) and the pipelines refilled, due blocks first.
func (t *Torrent) preempt(now time.Time) {
	if !t.pk.Starved(now.Add(urgentHorizon)) {
		return
	}
	for _, p := range t.peers.list {
		if p.peerChoking {
			continue
		}
		for _, b := range t.pk.Preemptible(p.key) {
			t.trace(p, "cancel", b.Piece, b.Begin)
			p.send(wire.Message{ID: wire.Cancel, Index: uint32(b.Piece), Begin: uint32(b.Begin), Length: uint32(b.Length)})
			t.pk.Cancelled(p.key, b)
		}
	}
}

// pinRange is the pieces a head has pinned in a bounded cache.
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

// HasPiece tells whether piece i is verified and readable.
func (t *Torrent) HasPiece(i int) bool { return t.store.HasPiece(i) }

// ReadAt reads verified bytes of the torrent's byte stream (all files concatenated).
func (t *Torrent) ReadAt(p []byte, off int64) (int, error) { return t.store.ReadAt(p, off) }
