package swarm

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/picker"
)

// The loop is the one owner of "which pieces are here": the ledger (cache.Ledger) decides
// admission, pins and evictions, the picker follows it, and the storage only executes the
// I/O. Other goroutines see presence through t.gen, which only the loop writes.
//
// t.gen[i] is odd while piece i is present and is bumped on every change, before the bytes
// of an evicted piece are punched. A reader that saw the same odd value before and after
// reading read verified bytes (a seqlock); uploads read that way, without a round trip to
// the loop. Reads for the mount go through the loop instead (ReadAt), which pins the
// pieces so they cannot go while they are copied.

// publish flips piece i's presence for other goroutines.
func (t *Torrent) publish(i int, present bool) {
	if g := t.gen[i].Load(); (g&1 == 1) != present {
		t.gen[i].Add(1)
	}
}

// admit makes a verified piece present: ledger, picker, waiters, peers.
func (t *Torrent) admit(i int) {
	t.debugPiece(i, "piece verified")
	ev := t.ledger.Admit(i)
	if !t.ledger.Present(i) {
		// A cache so small that the piece went at once, being the only one unpinned:
		// nobody was told it is here, so its blocks are wanted again and its bytes freed.
		t.pk.PieceFailed(i)
		t.evict(ev)
		return
	}
	t.publish(i, true)
	t.pk.SetHave(i)
	t.evict(ev)
	t.pieceVerified(i)
}

// evict applies the ledger's evictions: the pieces are wanted again and their bytes freed.
func (t *Torrent) evict(pieces []int) {
	for _, i := range pieces {
		t.publish(i, false)
		t.pk.Lost(i)
		t.queuePunch(i)
		t.debugPiece(i, "evicted piece")
	}
}

// debugPiece logs a per-piece event at Debug level. The check keeps the entry (a map copy)
// from being built a thousand times a GiB when debug logging is off.
func (t *Torrent) debugPiece(i int, msg string) {
	if t.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		t.log.WithField("piece", i).Debug(msg)
	}
}

// gate is the picker's gate: a piece may start when the ledger has room for it; a piece a
// read is blocked on may push readahead out. Evictions are applied after Pick returns,
// since the picker must not be changed while it picks.
func (t *Torrent) gate(i int) bool {
	hard := len(t.waiting[i]) > 0
	if !t.ledger.Fits(i, hard) {
		return false
	}
	t.deferred = append(t.deferred, t.ledger.Start(i, hard)...)
	return true
}

// readReq is a read of the mount waiting for, then holding, pieces first..last.
type readReq struct {
	id          int   // its wants' owner at the picker, while it waits
	off, end    int64 // the bytes read
	first, last int
	missing     int
	reply       chan error // cap 1: the loop never blocks answering
	answered    bool
}

// ReadAt reads the torrent's bytes [off, off+len(p)) (all files concatenated) once every
// piece under them is verified. The loop pins those pieces for the read, wants the missing
// ones now, and answers when they are in; the bytes are copied with the pins held, so
// nothing is evicted under the copy. It fails when ctx ends, the torrent stops, or the
// pieces can never fit in the cache (a full disk).
func (t *Torrent) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 || off >= t.info.TotalLength {
		return 0, fmt.Errorf("read at %d: outside the torrent's %d bytes", off, t.info.TotalLength)
	}
	n := int(min(int64(len(p)), t.info.TotalLength-off))
	if n == 0 {
		return 0, nil
	}
	first, last := t.info.PieceRange(off, int64(n))
	r := &readReq{id: newReadID(), off: off, end: off + int64(n), first: first, last: last, reply: make(chan error, 1)}
	select {
	case t.events <- loopFunc(func() { t.startRead(r) }):
	case <-t.closing:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer t.post(func() { t.endRead(r) })
	select {
	case err := <-r.reply:
		if err != nil {
			return 0, err
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.done:
		return 0, ErrClosed
	}
	got, err := t.store.ReadAt(p[:n], off)
	if err != nil {
		// The pieces were verified and pinned: the storage lost them (a cache file
		// deleted, a failing disk). They are fetched again on the next read.
		t.post(func() { t.storageLost(first, last, err) })
		return got, fmt.Errorf("read %d bytes at %d: %w", n, off, err)
	}
	return got, nil
}

// post hands f to the loop without waiting for it to run; dropped once the torrent stops.
func (t *Torrent) post(f func()) {
	select {
	case t.events <- loopFunc(f):
	case <-t.closing:
	}
}

var lastReadID atomic.Int64

// newReadID returns a picker owner id for a read: negative, so it never meets the reader
// package's positive head ids.
func newReadID() int { return int(-lastReadID.Add(1)) }

// startRead runs on the loop: pin the read's pieces and want the missing ones now.
func (t *Torrent) startRead(r *readReq) {
	t.readBytes += r.end - r.off
	for i := r.first; i <= r.last; i++ {
		t.ledger.Pin(i, true)
		if !t.ledger.Present(i) {
			r.missing++
			t.waiting[i] = append(t.waiting[i], r)
		}
	}
	if r.missing == 0 {
		t.answer(r, nil)
		return
	}
	if t.err != nil {
		t.answer(r, t.err)
		return
	}
	if t.log.Logger.IsLevelEnabled(logrus.TraceLevel) {
		for _, p := range t.peers.list {
			p.log.WithFields(logrus.Fields{"piece": r.first, "outstanding": t.pk.Outstanding(p.key),
				"rate": int64(p.downRate.recent()), "rtt": t.pk.RTT(p.key), "reserved": p == t.reserved,
				"choking": p.peerChoking}).Trace("read blocked")
		}
	}
	t.cancelRequests(t.pk.SetWants(r.id, []picker.Want{{First: r.first, Last: r.last, Due: time.Now()}}))
	if t.unservable(r) {
		return
	}
	if t.perBlock() {
		for i := r.first; i <= r.last && !r.answered; i++ {
			if !t.ledger.Present(i) {
				t.watchBlocks(i, r.off, r.end)
				t.releaseBlocks(i, t.blk[i]) // blocks verified for an earlier read
			}
		}
		if r.answered {
			return
		}
	}
	t.preempt(time.Now())
	t.fillAll()
}

// endRead runs on the loop once the read is over (copied, failed or abandoned).
func (t *Torrent) endRead(r *readReq) {
	t.unwait(r)
	for i := r.first; i <= r.last; i++ {
		t.ledger.Touch(i)
		t.evict(t.ledger.Unpin(i, true))
	}
	t.lastReadEnd = time.Now()
	if t.reserved != nil && !t.trimPending {
		t.trimPending = true
		time.AfterFunc(trimReservedAfter, func() { t.post(t.trimReserved) })
	}
}

// trimReservedAfter is how long after the last read ended, with none waiting, the reserved
// peer's readahead is cancelled (picker.TrimReserved): a copy or a catching-up player
// reads again well within it and keeps the reserved peer's whole rate; a viewer who
// seeked and now watches from a full window does not, and the reserved peer's quota is
// kept for the next seek.
const trimReservedAfter = 100 * time.Millisecond

// trimReserved runs on the loop, trimReservedAfter after a read ended.
func (t *Torrent) trimReserved() {
	t.trimPending = false
	if len(t.waiting) > 0 {
		return
	}
	if wait := trimReservedAfter - time.Since(t.lastReadEnd); wait > 0 {
		t.trimPending = true
		time.AfterFunc(wait, func() { t.post(t.trimReserved) })
		return
	}
	t.cancelRequests(t.pk.TrimReserved(time.Now()))
}

// unwait takes r off the waiting lists and drops its wants.
func (t *Torrent) unwait(r *readReq) {
	if r.missing == 0 {
		return
	}
	for i := r.first; i <= r.last; i++ {
		ws := t.waiting[i]
		for k, w := range ws {
			if w == r {
				ws = append(ws[:k], ws[k+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(t.waiting, i)
		} else {
			t.waiting[i] = ws
		}
	}
	r.missing = 0
	t.cancelRequests(t.pk.SetWants(r.id, nil))
}

func (t *Torrent) answer(r *readReq, err error) {
	if !r.answered {
		r.answered = true
		r.reply <- err
	}
}

// piecePresent wakes the reads that waited for piece i.
func (t *Torrent) piecePresent(i int) {
	ws := t.waiting[i]
	delete(t.waiting, i)
	for _, r := range ws {
		if r.missing--; r.missing == 0 {
			t.cancelRequests(t.pk.SetWants(r.id, nil))
			t.answer(r, nil)
		}
	}
}

// unservable fails r when a piece it waits for can never fit in the cache beside the
// pieces other reads hold: a disk too small for what is being read at once.
func (t *Torrent) unservable(r *readReq) bool { return t.unservableUnder(r, t.ledger.Bound()) }

func (t *Torrent) unservableUnder(r *readReq, bound int64) bool {
	if bound == 0 {
		return false
	}
	for i := r.first; i <= r.last; i++ {
		if !t.ledger.CanFitUnder(i, bound) {
			t.log.WithField("piece", i).Warnf("a read needs piece %d (%s) but the cache holds only %s beside the pieces other reads hold",
				i, humanSize(t.info.PieceSize(i)), humanSize(bound))
			t.unwait(r)
			t.answer(r, fmt.Errorf("piece %d does not fit in the cache: %w", i, syscall.ENOSPC))
			return true
		}
	}
	return false
}

// failReads answers every waiting read with err.
func (t *Torrent) failReads(err error) {
	for _, r := range t.waitingReads() {
		t.unwait(r)
		t.answer(r, err)
	}
}

// checkReads fails the waiting reads that cannot be served any more.
func (t *Torrent) checkReads() {
	for _, r := range t.waitingReads() {
		t.unservable(r)
	}
}

func (t *Torrent) waitingReads() []*readReq {
	seen := make(map[*readReq]bool)
	var out []*readReq
	for _, ws := range t.waiting {
		for _, r := range ws {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// storageLost drops pieces the storage could not read back: they are fetched again.
func (t *Torrent) storageLost(first, last int, err error) {
	t.log.WithError(err).Warnf("pieces %d-%d could not be read back; fetching them again", first, last)
	for i := first; i <= last; i++ {
		if t.ledger.Present(i) {
			t.ledger.Evict(i)
			t.evict([]int{i})
		}
	}
	t.fillAll()
}

// diskReserve is the free space a cache shrunk by a full disk leaves on it, for the resume
// file and whoever else writes there.
func (t *Torrent) diskReserve() int64 { return 1 << 20 }

// diskMeasured sets the cache's bound from what the disk holds: after a write found it full
// (shrink to it) or, while shrunk, every regrowEvery (grow back when space was freed).
func (t *Torrent) diskMeasured(used, avail int64, regrow bool) {
	fits := used + avail - t.diskReserve()
	cur := t.ledger.Bound()
	if regrow {
		if fits <= cur+t.info.PieceLength {
			return
		}
		limit := t.cfg.CacheBytes
		if missing := t.info.TotalLength - t.ledger.PresentBytes(); limit == 0 && fits-t.ledger.PresentBytes() >= missing {
			t.log.Warn("the cache's disk has room again; downloading everything again")
			t.evict(t.ledger.SetBound(0))
			t.shrunk = false
			if !t.cfg.NoBackground {
				t.pk.SetBackground(true)
			}
			return
		}
		if limit > 0 && fits >= limit {
			fits, t.shrunk = limit, false
		}
		t.log.Infof("the cache's disk has room again: the cache grows to %s", humanSize(fits))
		t.evict(t.ledger.SetBound(fits))
		t.checkReads()
		return
	}
	if cur != 0 && fits >= cur {
		return
	}
	fits = max(fits, 1) // 0 would mean unbounded
	if !t.shrunk {
		t.log.Warnf("disk full: %s has no space left; the cache shrinks from %s to %s (%d of %d pieces on disk; %s in use by this torrent, %s free); reads go on, the background download is paused",
			t.store.Dir(), boundString(cur), humanSize(fits), t.ledger.PresentCount(), t.info.NumPieces(), humanSize(used), humanSize(avail))
	} else {
		t.log.Infof("disk still full: the cache shrinks to %s", humanSize(fits))
	}
	t.shrunk = true
	t.cancelRequests(t.pk.SetBackground(false))
	t.shrinkTo(fits)
}

// shrinkTo lowers the cache's bound to what a full disk holds. Verified pieces are what the
// download has to show for itself: before any is evicted, reads that can no longer be
// served fail, and pieces being written that no read waits for are given up (they are
// fetched again when wanted and there is room).
func (t *Torrent) shrinkTo(bound int64) {
	for _, r := range t.waitingReads() {
		t.unservableUnder(r, bound)
	}
	for _, i := range t.ledger.InFlightPieces() {
		if t.ledger.Used() <= bound {
			break
		}
		if len(t.waiting[i]) == 0 && !t.disk.verifying[i] {
			t.giveUp(i)
		}
	}
	t.evict(t.ledger.SetBound(bound))
}

// giveUp abandons a piece being written: it no longer counts against the cache, and its
// bytes are freed once the writes already queued for it are back.
func (t *Torrent) giveUp(i int) {
	t.ledger.Abort(i)
	if t.disk.pendingWrites[i] > 0 {
		if _, failed := t.disk.failed[i]; !failed {
			t.disk.failed[i] = errGaveUp
		}
		return
	}
	delete(t.disk.awaiting, i)
	t.discardPiece(i, errGaveUp)
}

var errGaveUp = errors.New("no room left for it on a full disk")

func boundString(b int64) string {
	if b == 0 {
		return "unbounded"
	}
	return humanSize(b)
}

// regrowEvery is how often a cache shrunk by a full disk looks for freed space.
const regrowEvery = 10 // ticks
