package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"torrentfs/metainfo"
)

// Torrent is what a read head needs from a torrent. *swarm.Torrent satisfies it.
type Torrent interface {
	Info() *metainfo.Info
	// SetWants replaces head's wants: pieces first, first+1, ... by due[0], due[1], ...;
	// an empty due clears them.
	SetWants(head int, first int, due []time.Time)
	// HasPiece tells whether piece i is verified, as a hint: it may change at once.
	HasPiece(i int) bool
	// ReadAt reads bytes [off, off+len(p)) of the torrent's byte stream (all files
	// concatenated) once every piece under them is verified, wanting the missing ones now
	// and holding them until the bytes are copied. It fails when ctx ends, the torrent
	// stops or the pieces cannot be had (a full disk).
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
}

// Options tune a Head. Zero fields take the defaults in brackets.
type Options struct {
	// MinWindow is the readahead of a new stream [4 MiB]; MaxWindow caps every window and
	// prefetch [128 MiB]. In bounded-cache mode the caller sets MaxWindow well under the
	// cache size, since wanted pieces are pinned.
	MinWindow, MaxWindow int64
	// WindowTime is how much reading time the main window covers at the measured rate [15s].
	WindowTime time.Duration
	// Slack is how far from a stream's position a read may start and still count as
	// sequential [1 MiB]; kernel readahead issues reads slightly out of order.
	Slack int64
	// PromoteBytes of sequential reading turn a side stream into the main one [MinWindow].
	PromoteBytes int64
	// SideTTL drops a side stream nobody read for that long [10s].
	SideTTL time.Duration
	// PrefetchBytes of the file's head and of its tail are wanted at the first read [1 MiB,
	// at most MaxWindow/4], due PrefetchDelay later [500ms].
	PrefetchBytes int64
	PrefetchDelay time.Duration
	// Now is the clock [time.Now]; tests drive it.
	Now func() time.Time
}

const (
	defaultMinWindow  = 4 << 20
	defaultMaxWindow  = 128 << 20
	defaultWindowTime = 15 * time.Second
	defaultSlack      = 1 << 20
	defaultSideTTL    = 10 * time.Second
	defaultPrefetch   = 1 << 20
	defaultPrefDelay  = 500 * time.Millisecond
	// rateFloor is the read rate assumed until one is measured, and the least one used
	// for due times, so a slow start does not push the window's deadlines to infinity.
	rateFloor = 1 << 20
	// rateMinElapsed keeps the first burst of reads from measuring an absurd rate.
	rateMinElapsed = time.Second
	// refreshWants re-sends a stream's wants this often even if its pieces did not
	// change, so due times follow the measured rate.
	refreshWants = time.Second
	// yieldDelay is how much later than a read of one stream the other stream's pieces
	// that were due now become due (yield). It is more than the torrent's slack for
	// pieces due at about the same moment, so their queued requests may be cancelled.
	yieldDelay = 250 * time.Millisecond
)

func (o Options) withDefaults() Options {
	if o.MaxWindow <= 0 {
		o.MaxWindow = defaultMaxWindow
	}
	if o.MinWindow <= 0 {
		o.MinWindow = defaultMinWindow
	}
	o.MinWindow = min(o.MinWindow, o.MaxWindow)
	if o.WindowTime <= 0 {
		o.WindowTime = defaultWindowTime
	}
	if o.Slack <= 0 {
		o.Slack = defaultSlack
	}
	if o.PromoteBytes <= 0 {
		o.PromoteBytes = o.MinWindow
	}
	if o.SideTTL <= 0 {
		o.SideTTL = defaultSideTTL
	}
	if o.PrefetchBytes <= 0 {
		o.PrefetchBytes = defaultPrefetch
	}
	o.PrefetchBytes = min(o.PrefetchBytes, max(o.MaxWindow/4, 1))
	if o.PrefetchDelay <= 0 {
		o.PrefetchDelay = defaultPrefDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

var lastID atomic.Int64

// NewID returns a head ID no other caller in this process got.
func NewID() int { return int(lastID.Add(1)) }

// ErrClosed is returned by reads on a closed Head.
var ErrClosed = errors.New("read head is closed")

// Head is one open file's reader. Safe for concurrent use.
type Head struct {
	t    Torrent
	info *metainfo.Info
	file metainfo.File
	opts Options
	// prefetch IDs for the file's head and tail pieces.
	headID, tailID int

	mu     sync.Mutex
	closed bool
	main   *stream
	side   *stream
	// prefetchAt is when the head and tail prefetch was last asked for (zero before the
	// first read); prefetchDone once its pieces are all in.
	prefetchAt   time.Time
	prefetchDone bool
}

// New makes a read head over file (an index into t.Info().Files). Its first read asks for
// the file's first and last pieces too, after its own and before its readahead.
func New(t Torrent, file int, opts Options) (*Head, error) {
	info := t.Info()
	if file < 0 || file >= len(info.Files) {
		return nil, fmt.Errorf("new read head: no file %d in %q", file, info.Name)
	}
	h := &Head{t: t, info: info, file: info.Files[file], opts: opts.withDefaults(), headID: NewID(), tailID: NewID()}
	h.prefetchDone = h.file.Length == 0
	return h, nil
}

// prefetch asks for the file's first and last pieces, due PrefetchDelay from now. A read
// re-asks (refreshPrefetch) while they are missing, so the prefetch stays behind the reads
// that block: once overdue it would sort before a seek made right after opening.
func (h *Head) prefetch(now time.Time) {
	n := h.file.Length
	if n <= 0 {
		return
	}
	due := now.Add(h.opts.PrefetchDelay)
	pb := min(h.opts.PrefetchBytes, n)
	h.wantRange(h.headID, 0, pb, due)
	h.wantRange(h.tailID, n-pb, pb, due)
	h.prefetchAt = now
}

// refreshPrefetch moves a missing prefetch's due time on, at most every PrefetchDelay.
// Called with h.mu held.
func (h *Head) refreshPrefetch(now time.Time) {
	if h.prefetchDone || now.Sub(h.prefetchAt) < h.opts.PrefetchDelay {
		return
	}
	n, pb := h.file.Length, min(h.opts.PrefetchBytes, h.file.Length)
	hf, hl := h.info.PieceRange(h.file.Offset, pb)
	tf, tl := h.info.PieceRange(h.file.Offset+n-pb, pb)
	if h.present(hf, hl) && h.present(tf, tl) {
		h.prefetchDone = true
		return
	}
	h.prefetch(now)
}

// wantRange asks for the pieces under file bytes [off, off+n), all due at due.
func (h *Head) wantRange(id int, off, n int64, due time.Time) {
	first, last := h.info.PieceRange(h.file.Offset+off, n)
	if last < first {
		return
	}
	ds := make([]time.Time, last-first+1)
	for k := range ds {
		ds[k] = due
	}
	h.t.SetWants(id, first, ds)
}

// Size is the file's length.
func (h *Head) Size() int64 { return h.file.Length }

// ReadAt fills p from the file at off, waiting for the pieces it needs; it returns fewer
// bytes only at the end of the file (with io.EOF) or with an error. If ctx ends first it
// returns ctx.Err() and leaves every want in place.
func (h *Head) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	size := h.file.Length
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > size-off {
		p, eof = p[:size-off], io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := h.demand(off, off+int64(len(p))); err != nil {
		return 0, err
	}
	n, err := h.t.ReadAt(ctx, p, h.file.Offset+off)
	if err != nil {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		return n, err
	}
	return n, eof
}

// Close clears every want of the head. Reads in flight finish or fail on their own.
func (h *Head) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	for _, s := range []*stream{h.main, h.side} {
		if s != nil {
			h.t.SetWants(s.id, 0, nil)
		}
	}
	h.main, h.side = nil, nil
	h.t.SetWants(h.headID, 0, nil)
	h.t.SetWants(h.tailID, 0, nil)
	return nil
}

// Restart readies the head for a reader's new request at file offset off, one that does
// not go on from a request still under way (an HTTP viewer's next request): if off
// continues neither of its streams, both are dropped, as closing a file drops a FUSE
// reader's, and the next read starts a main stream afresh. The reader has seeked: the
// readahead of where it was would keep the peers busy with pieces it left. A request that
// continues either stream changes nothing, so a viewer alternating between two places
// keeps both windows.
func (h *Head) Restart(off int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.main == nil {
		return
	}
	if h.main.near(off, h.opts.Slack) || h.side != nil && h.side.near(off, h.opts.Slack) {
		return
	}
	h.drop(h.main)
	h.drop(h.side)
	h.main, h.side = nil, nil
}

// Window reports the main stream's position and the end of its readahead window, file
// offsets, for status displays; ok is false before the first read and after Close.
func (h *Head) Window() (pos, end int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.main == nil {
		return 0, 0, false
	}
	return h.main.pos, min(h.main.pos+h.main.window, h.file.Length), true
}
