package reader

import (
	"time"
)

// stream is one run of sequential reading (see the package doc). Guarded by Head.mu.
type stream struct {
	id     int
	pos    int64 // furthest file offset read so far
	began  time.Time
	last   time.Time // latest read
	seq    int64     // bytes read sequentially since began
	window int64     // readahead beyond pos, bytes
	rate   float64   // measured sequential read rate, bytes/s; 0 until measured
	// The rate over the last second or two (recentRate): a copy that starts slowly,
	// while the download ramps up, reads ten times faster a few seconds later, and its
	// window must follow that, not the average since it began.
	markAt     time.Time
	markSeq    int64
	recentRate float64

	// What was last sent with SetWants.
	wantFirst, wantLast int
	wantAt              time.Time
	yielded             bool // its wants were moved behind the other stream's (yield)
}

func newStream(off int64, now time.Time, window int64) *stream {
	return &stream{id: NewID(), pos: off, began: now, last: now, window: window, wantFirst: 0, wantLast: -1}
}

// near tells whether a read starting at off continues s.
func (s *stream) near(off, slack int64) bool {
	return off >= s.pos-slack && off <= s.pos+slack
}

// advance records the read [off, end) and re-measures the rate.
func (s *stream) advance(off, end int64, now time.Time) {
	if n := end - max(off, s.pos); n > 0 {
		s.seq += n
	}
	s.pos = max(s.pos, end)
	s.last = now
	elapsed := max(now.Sub(s.began), rateMinElapsed)
	s.rate = float64(s.seq) / elapsed.Seconds()
	if s.markAt.IsZero() {
		s.markAt = s.began
	}
	if el := now.Sub(s.markAt); el >= rateMinElapsed {
		s.recentRate = float64(s.seq-s.markSeq) / el.Seconds()
		s.markAt, s.markSeq = now, s.seq
	}
}

// demand routes the read [off, end) to a stream, grows or opens windows, and sends the
// wants that changed.
func (h *Head) demand(off, end int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	o := &h.opts
	now := o.Now()
	if h.side != nil && now.Sub(h.side.last) > o.SideTTL {
		h.drop(h.side)
		h.side = nil
	}
	var s *stream
	switch {
	case h.main == nil:
		h.main = newStream(off, now, o.MinWindow)
		s = h.main
	case h.main.near(off, o.Slack):
		s = h.main
	case h.side != nil && h.side.near(off, o.Slack):
		s = h.side
	default:
		// Far from both: a probe or the start of a seek. Main keeps its window.
		if h.side != nil {
			h.drop(h.side)
		}
		h.side = newStream(off, now, o.MinWindow)
		s = h.side
	}
	s.advance(off, end, now)
	if s == h.side && s.seq >= o.PromoteBytes {
		// Read on for long enough: it was a seek, not a probe.
		h.drop(h.main)
		h.main, h.side = s, nil
	}
	if s == h.main {
		target := int64(max(s.rate, s.recentRate) * o.WindowTime.Seconds())
		s.window = min(max(s.window, target, o.MinWindow), o.MaxWindow)
	}
	if s == h.side {
		h.yield(h.main, now)
	} else {
		h.yield(h.side, now)
	}
	if h.prefetchAt.IsZero() && !h.prefetchDone {
		// The head's first read: its own pieces, then the prefetch, then the window (want),
		// each asked of the peers in that order. A player reading a file with its index at
		// the end reads there next, before the window.
		if rfirst, rlast := h.info.PieceRange(h.file.Offset+off, end-off); rlast >= rfirst {
			h.sendWants(s, rfirst, rlast, end, now, now)
		}
		h.prefetch(now)
	}
	h.want(s, off, end, now)
	h.refreshPrefetch(now)
	return nil
}

// drop clears a stream's wants.
func (h *Head) drop(s *stream) {
	if s != nil {
		h.t.SetWants(s.id, 0, nil)
	}
}

// want sends s's wants after the read [off, end): the pieces under the read due now, then
// the window beyond s.pos, each piece due when the reader should reach it at the measured
// rate. To spare the torrent's loop a round trip per read, unchanged wants are re-sent
// only when the window has moved by an eighth, the read needs a piece outside them, or
// refreshWants has passed.
func (h *Head) want(s *stream, off, end int64, now time.Time) {
	info, base, size := h.info, h.file.Offset, h.file.Length
	wend := min(max(end, s.pos)+s.window, size)
	first, last := info.PieceRange(base+off, wend-off)
	if last < first {
		return
	}
	rfirst, rlast := info.PieceRange(base+off, end-off)
	step := max(1, (last-first+1)/8)
	stale := now.Sub(s.wantAt) >= refreshWants
	outside := rfirst < s.wantFirst || rlast > s.wantLast
	moved := first-s.wantFirst >= step || last-s.wantLast >= step
	if !stale && !outside && !moved && !s.yielded && (rfirst == s.wantFirst || h.present(rfirst, rlast)) {
		return
	}
	h.sendWants(s, first, last, end, now, now)
}

// sendWants wants s's pieces first..last: those before file offset end due at start, the
// others when the reader should reach them from there.
func (h *Head) sendWants(s *stream, first, last int, end int64, now, start time.Time) {
	rate := max(s.rate, rateFloor)
	if h.main != nil && s != h.main {
		rate = max(h.main.rate, rateFloor)
	}
	due := make([]time.Time, last-first+1)
	for k := range due {
		ahead := h.info.PieceOffset(first+k) - h.file.Offset - end
		due[k] = start
		if ahead > 0 {
			due[k] = start.Add(time.Duration(float64(ahead) / rate * float64(time.Second)))
		}
	}
	h.t.SetWants(s.id, first, due)
	s.wantFirst, s.wantLast, s.wantAt, s.yielded = first, last, now, start.After(now)
}

// yield moves s's wants behind a read of the head's other stream. A player reads on one
// thread, so once it reads far from s, what s wanted now (the pieces under its last
// reads, and under readahead reads the kernel or an HTTP handler made for it) holds
// nobody up any more; left due now, those pieces would come before the read the player
// waits on, and their blocks would fill the peers' queues ahead of it. They become due
// yieldDelay from now, the rest of s's window after them, and the torrent may cancel
// their queued requests to serve the new read first. s's next read wants them now again.
func (h *Head) yield(s *stream, now time.Time) {
	if s == nil || s.yielded || s.wantLast < s.wantFirst {
		return
	}
	h.sendWants(s, s.wantFirst, s.wantLast, s.pos, now, now.Add(yieldDelay))
}

func (h *Head) present(first, last int) bool {
	for k := first; k <= last; k++ {
		if !h.t.HasPiece(k) {
			return false
		}
	}
	return true
}
