package cache

import (
	"math"

	"torrentfs/bitfield"
	"torrentfs/metainfo"
)

// Ledger is the record of which pieces are on disk and which may go: the verified
// (present) pieces, the pieces being written (in flight, counted whole from their first
// request so pieces on their way cannot push the disk past the bound), pins, a least
// recently read order, and the byte bound. It decides; it does no I/O. Its one owner is the
// torrent's run loop: it is not safe for concurrent use and never calls out. Evictions it
// decides are returned to the caller, who frees their bytes (Storage.Punch) and tells
// everyone else.
//
// Pins come in two strengths. A soft pin (a reader's readahead window, a file's head and
// tail) keeps a piece from ordinary eviction. A hard pin (a read in progress) keeps it from
// every eviction. Room for a piece a read is blocked on may be made by evicting soft-pinned
// pieces (MakeRoom with hard set), so readahead never starves the read it serves.
type Ledger struct {
	info  *metainfo.Info
	bound int64 // 0: unbounded

	present      bitfield.Bitfield
	presentBytes int64
	inflight     bitfield.Bitfield
	flightBytes  int64

	soft, hard []int32 // pin counts
	// softBytes and hardBytes are the bytes of present pieces with any pin and with a
	// hard pin: what ordinary and forced eviction cannot free.
	softBytes, hardBytes int64

	// The least recently read order over present pieces: an intrusive doubly linked list
	// (prev/next hold index+1, 0 for none), oldest at head. stamp[i] is when piece i last
	// moved to the tail, by clock: ledgers sharing a clock (the torrents of one cache
	// pool) can compare their oldest pieces.
	prev, next []int32
	head, tail int32
	stamp      []int64
	clock      func() int64
	ticks      int64 // the clock when none is set
}

// NewLedger makes an empty ledger for info, bounded to bound bytes (0: unbounded).
func NewLedger(info *metainfo.Info, bound int64) *Ledger {
	n := info.NumPieces()
	return &Ledger{
		info:     info,
		bound:    max(bound, 0),
		present:  bitfield.New(n),
		inflight: bitfield.New(n),
		soft:     make([]int32, n),
		hard:     make([]int32, n),
		prev:     make([]int32, n),
		next:     make([]int32, n),
		stamp:    make([]int64, n),
	}
}

// SetClock makes the ledger stamp its reads with clock, which must increase: ledgers that
// share one can tell whose least recently read piece is older (see Oldest).
func (l *Ledger) SetClock(clock func() int64) { l.clock = clock }

// Evictable tells whether ordinary eviction has anything to take: some present piece
// without a pin. It is cheap; Oldest walks past pinned pieces.
func (l *Ledger) Evictable() bool { return l.presentBytes > l.softBytes }

// Oldest is the least recently read piece that ordinary eviction may take (present, not
// pinned) and its stamp.
func (l *Ledger) Oldest() (piece int, stamp int64, ok bool) {
	if !l.Evictable() {
		return 0, 0, false
	}
	for i := l.head - 1; i >= 0; i = l.next[i] - 1 {
		if l.hard[i] == 0 && l.soft[i] == 0 {
			return int(i), l.stamp[i], true
		}
	}
	return 0, 0, false
}

// Load marks every piece of have present (after Storage.Check), in index order, and returns
// what a bound then evicts.
func (l *Ledger) Load(have bitfield.Bitfield) []int {
	for i := range have.Len() {
		if have.Has(i) && !l.present.Has(i) {
			l.add(i)
		}
	}
	return l.shrink(0, false)
}

// Bound is the byte bound, 0 when unbounded.
func (l *Ledger) Bound() int64 { return l.bound }

// SetBound changes the bound (0: unbounded) and returns the pieces evicted to meet it.
func (l *Ledger) SetBound(b int64) []int {
	l.bound = max(b, 0)
	return l.shrink(0, false)
}

// Present tells whether piece i is verified and on disk.
func (l *Ledger) Present(i int) bool { return l.present.Has(i) }

// InFlight tells whether piece i is being written.
func (l *Ledger) InFlight(i int) bool { return l.inflight.Has(i) }

// Idle tells whether piece i holds nothing on disk that matters: neither present nor being
// written, so bytes it shares with a neighbour's file-system block may be freed.
func (l *Ledger) Idle(i int) bool {
	return i < 0 || i >= l.info.NumPieces() || !l.present.Has(i) && !l.inflight.Has(i)
}

// PresentBytes is the size of the present pieces; PresentCount their number.
func (l *Ledger) PresentBytes() int64 { return l.presentBytes }
func (l *Ledger) PresentCount() int   { return l.present.Count() }

// Have returns a copy of the present set.
func (l *Ledger) Have() bitfield.Bitfield { return l.present.Clone() }

// Used is the disk the ledger accounts for: present pieces plus pieces in flight.
func (l *Ledger) Used() int64 { return l.presentBytes + l.flightBytes }

// Fits tells whether piece i may start now: it fits beside what cannot be evicted for it
// (pinned pieces, or only hard-pinned ones when hard) and the pieces already in flight.
func (l *Ledger) Fits(i int, hard bool) bool {
	if l.bound == 0 || l.present.Has(i) || l.inflight.Has(i) {
		return true
	}
	fixed := l.softBytes
	if hard {
		fixed = l.hardBytes
	}
	return l.flightBytes+fixed+l.info.PieceSize(i) <= l.bound
}

// CanEverFit tells whether piece i could be stored at all beside the hard-pinned pieces,
// were every other piece evicted and every write finished: false means a read waiting for
// it cannot be served under this bound.
func (l *Ledger) CanEverFit(i int) bool { return l.CanFitUnder(i, l.bound) }

// CanFitUnder is CanEverFit under another bound (0: unbounded): asked before a bound
// shrinks, to fail the reads it would strand.
func (l *Ledger) CanFitUnder(i int, bound int64) bool {
	if bound == 0 || l.present.Has(i) {
		return true
	}
	return l.hardBytes+l.info.PieceSize(i) <= bound
}

// InFlightPieces lists the pieces being written, in index order.
func (l *Ledger) InFlightPieces() []int {
	var out []int
	for i := range l.inflight.Len() {
		if l.inflight.Has(i) {
			out = append(out, i)
		}
	}
	return out
}

// Start records that piece i is being written and returns the pieces evicted to make room
// (ordinary eviction, or forced past soft pins when hard). Call Fits first; Start counts
// the piece even when it does not fit.
func (l *Ledger) Start(i int, hard bool) []int {
	if l.present.Has(i) || l.inflight.Has(i) {
		return nil
	}
	l.inflight.Set(i)
	l.flightBytes += l.info.PieceSize(i)
	return l.shrink(0, hard)
}

// Abort records that piece i is no longer being written (its partial bytes are to be
// discarded, or it was never begun).
func (l *Ledger) Abort(i int) {
	if l.inflight.Has(i) {
		l.inflight.Clear(i)
		l.flightBytes -= l.info.PieceSize(i)
	}
}

// Admit records that piece i was verified: it becomes present, the most recently read,
// and returns the pieces evicted to make room (a piece admitted over the bound because
// pins left no room stays; the excess goes when pins are released).
func (l *Ledger) Admit(i int) []int {
	if l.present.Has(i) {
		return nil
	}
	l.Abort(i)
	l.add(i)
	return l.shrink(0, false)
}

// add makes piece i present and the most recently read.
func (l *Ledger) add(i int) {
	l.present.Set(i)
	l.presentBytes += l.info.PieceSize(i)
	l.pushBack(i)
	if l.soft[i] > 0 || l.hard[i] > 0 {
		l.addPinned(i, 1)
	}
}

// Evict drops piece i from the present set whatever its pins (a storage fault lost it).
func (l *Ledger) Evict(i int) {
	if !l.present.Has(i) {
		return
	}
	if l.soft[i] > 0 || l.hard[i] > 0 {
		l.addPinned(i, -1)
	}
	l.drop(i)
}

// Touch makes piece i the most recently read.
func (l *Ledger) Touch(i int) {
	if l.present.Has(i) {
		l.unlink(i)
		l.pushBack(i)
	}
}

// Pin adds a pin to piece i (present or not); hard pins also survive forced eviction.
func (l *Ledger) Pin(i int, hard bool) {
	if i < 0 || i >= len(l.soft) {
		return
	}
	was := l.soft[i] > 0 || l.hard[i] > 0
	wasHard := l.hard[i] > 0
	if hard {
		l.hard[i]++
	} else {
		l.soft[i]++
	}
	if l.present.Has(i) {
		if !was {
			l.softBytes += l.info.PieceSize(i)
		}
		if hard && !wasHard {
			l.hardBytes += l.info.PieceSize(i)
		}
	}
}

// Unpin releases one Pin of the same strength and returns what eviction then frees.
func (l *Ledger) Unpin(i int, hard bool) []int {
	if i < 0 || i >= len(l.soft) {
		return nil
	}
	c := &l.soft[i]
	if hard {
		c = &l.hard[i]
	}
	if *c == 0 {
		return nil
	}
	*c--
	if l.present.Has(i) {
		if hard && l.hard[i] == 0 {
			l.hardBytes -= l.info.PieceSize(i)
		}
		if l.soft[i] == 0 && l.hard[i] == 0 {
			l.softBytes -= l.info.PieceSize(i)
			// Released pieces are the most recently used: a reader just left them.
			l.unlink(i)
			l.pushBack(i)
		}
	}
	return l.shrink(0, false)
}

func (l *Ledger) addPinned(i int, sign int64) {
	size := l.info.PieceSize(i)
	l.softBytes += sign * size
	if l.hard[i] > 0 {
		l.hardBytes += sign * size
	}
}

// shrink evicts present pieces, least recently read first, until incoming more bytes fit
// under the bound. Pinned pieces are passed over, soft-pinned ones only unless force.
func (l *Ledger) shrink(incoming int64, force bool) []int {
	if l.bound == 0 {
		return nil
	}
	var out []int
	for i := l.head - 1; i >= 0 && l.Used()+incoming > l.bound; {
		next := l.next[i] - 1
		if l.hard[i] == 0 && (force || l.soft[i] == 0) {
			if l.soft[i] > 0 {
				l.addPinned(int(i), -1)
			}
			l.drop(int(i))
			out = append(out, int(i))
		}
		i = next
	}
	return out
}

// Room is how many more bytes may start without evicting a pinned piece: MaxInt64 when
// unbounded.
func (l *Ledger) Room() int64 {
	if l.bound == 0 {
		return math.MaxInt64
	}
	return l.bound - l.softBytes - l.flightBytes
}

func (l *Ledger) drop(i int) {
	l.present.Clear(i)
	l.presentBytes -= l.info.PieceSize(i)
	l.unlink(i)
}

func (l *Ledger) pushBack(i int) {
	if l.clock != nil {
		l.stamp[i] = l.clock()
	} else {
		l.ticks++
		l.stamp[i] = l.ticks
	}
	l.prev[i], l.next[i] = l.tail, 0
	if l.tail != 0 {
		l.next[l.tail-1] = int32(i) + 1
	} else {
		l.head = int32(i) + 1
	}
	l.tail = int32(i) + 1
}

func (l *Ledger) unlink(i int) {
	p, n := l.prev[i], l.next[i]
	if p != 0 {
		l.next[p-1] = n
	} else if l.head == int32(i)+1 {
		l.head = n
	} else {
		return // not linked
	}
	if n != 0 {
		l.prev[n-1] = p
	} else {
		l.tail = p
	}
	l.prev[i], l.next[i] = 0, 0
}
