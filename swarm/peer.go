package swarm

import (
	"bufio"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/bitfield"
	"torrentfs/picker"
	"torrentfs/swarm/wire"
)

const (
	// readTimeout drops a peer that sends nothing, not even a keep-alive, for this long.
	readTimeout = 3 * time.Minute
	// keepaliveEvery is how long the writer stays silent before sending a keep-alive.
	keepaliveEvery = 90 * time.Second
	// writeTimeout drops a peer whose socket does not drain.
	writeTimeout = 60 * time.Second
	// maxUploadQueue is how many of a peer's requests we hold (we advertise it as reqq).
	maxUploadQueue = 250
	// maxRequestLen is the largest block we serve; BEP 3 clients ask 16 KiB, some up to 128.
	maxRequestLen = 128 << 10
)

// peerConn is one established connection. Its goroutines are a reader, which decodes
// messages and hands them to the torrent's loop, and a writer, which drains an outgoing
// queue so the loop never waits on a socket. The queue and serving (and nothing else here)
// are guarded by mu; the fields under "loop-owned" belong to the torrent's run loop alone.
type peerConn struct {
	conn net.Conn
	addr netip.AddrPort
	// replaced is the address to redial if this connection, kept over a duplicate at
	// replacedAt, ends soon after (see acceptConn); invalid otherwise. Loop-owned.
	replaced   netip.AddrPort
	replacedAt time.Time
	peerID     [20]byte
	log        *logrus.Entry

	mu    sync.Mutex
	queue []outMsg
	// serving mirrors !amChoking for the reader: while it is set, the reader queues the
	// peer's requests for pieces we have itself (Torrent.serveRequest) instead of handing
	// them to the loop. The loop sets it with the unchoke and clears it with the choke,
	// under mu, so no upload is queued after a choke.
	serving bool
	wake    chan struct{} // cap 1: something was queued
	closing chan struct{} // closed once by close()
	once    sync.Once
	release func() // gives back the client's room for this connection; called by close
	done    sync.WaitGroup

	uploaded   atomic.Int64 // block bytes written to this peer, read by the loop each tick
	downloaded atomic.Int64 // block bytes read from this peer
	// queuedUploads counts uploads in the queue or being sent, so the loop can bound a
	// peer's requests without taking the queue's lock.
	queuedUploads atomic.Int32

	// loop-owned
	key            picker.PeerID
	has            bitfield.Bitfield
	hasAll         bool
	amChoking      bool
	amInterested   bool
	peerChoking    bool
	peerInterested bool
	fast           bool // both sides speak BEP 6
	extended       bool // both sides speak BEP 10
	reqq           int  // how many requests the peer lets us queue
	pipeBoost      int  // pipeline depth learned by adaptPipeline
	blocksThisTick int  // blocks received since the last tick
	// Blocks received per round trip (countRoundTrip): rttFrom opened the count in
	// rttCount; rttBlocks is the last whole round trip's.
	rttFrom        time.Time
	rttCount       int
	rttBlocks      int
	longestGap     time.Duration // the longest wait between two blocks since the last tick
	metadataID     int           // the peer's ut_metadata extension id, 0 when it has none
	metadataServed int           // ut_metadata pieces sent to it
	lastBlock      time.Time
	lastUnchoked   time.Time
	connectedAt    time.Time
	snubbed        bool
	downRate       rateMeter
	upRate         rateMeter
	strikes        int // pieces it contributed to that failed verification
	clientName     string
	pieceSetBy     wire.ID           // the message that gave its piece set, 0 before
	floodWarnings  int               // requests over the queue limit this second
	sentDHTPort    bool              // it sent a PORT message (only the first one is passed on)
	granted        map[uint32]bool   // pieces we let it fetch while we choke it (BEP 6), nil before
	given          bitfield.Bitfield // pieces we began to send it while spreading (spread.go), empty before
	spreadRefused  bitfield.Bitfield // pieces it was refused while spreading, a suggestion sent for each
	suggests       int               // suggest-piece messages it sent us (BEP 6)
	pex            pexPeer           // BEP 11 state (pex.go)
	v2             bool              // the connection speaks a hybrid's v2 info-hash: BEP 52 hash messages
	hashJobs       int               // its hash requests being read and hashed for it
	hashAsks       int               // our hash requests it has not answered

	// A batch (noteBatch): blocks that came together after a silence of batchGap, how
	// many, how many requests were out when it began and when; and whether a batch
	// deepened the pipeline since the last tick.
	batchN, batchOwed int
	batchFrom         time.Time
	batchBoosted      bool
}

// outMsg is a queued message; for an upload the writer reads the block from storage just
// before sending it, so queued uploads cost no memory.
type outMsg struct {
	msg    wire.Message
	upload bool
}

func newPeerConn(conn net.Conn, addr netip.AddrPort, hs wire.Handshake, log *logrus.Entry) *peerConn {
	return &peerConn{
		conn:        conn,
		addr:        addr,
		peerID:      hs.PeerID,
		log:         log.WithField("peer", addr.String()),
		wake:        make(chan struct{}, 1),
		closing:     make(chan struct{}),
		amChoking:   true,
		peerChoking: true,
		reqq:        defaultPeerReqq,
	}
}

// defaultPeerReqq is the request queue we assume a peer allows until its extension
// handshake says otherwise; libtorrent's default is in this range and everyone copes.
const defaultPeerReqq = 250

// send queues a message without blocking.
func (p *peerConn) send(m wire.Message) { p.enqueue(outMsg{msg: m}) }

// sendUpload queues a block for upload; the writer reads it from storage when its turn comes.
func (p *peerConn) sendUpload(index, begin, length uint32) {
	p.queuedUploads.Add(1)
	p.enqueue(outMsg{msg: wire.Message{ID: wire.Piece, Index: index, Begin: begin, Length: length}, upload: true})
}

// sendAhead queues m before the uploads waiting in the queue: a small answer a reader
// waits for (BEP 52 block hashes) must not wait behind blocks the upload limit paces.
func (p *peerConn) sendAhead(m wire.Message) {
	p.mu.Lock()
	i := 0
	for i < len(p.queue) && !p.queue[i].upload {
		i++
	}
	p.queue = slices.Insert(p.queue, i, outMsg{msg: m})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peerConn) enqueue(m outMsg) {
	p.mu.Lock()
	p.queue = append(p.queue, m)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// cancelUpload removes a queued upload that the writer has not started; it reports whether
// one was removed.
func (p *peerConn) cancelUpload(index, begin, length uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, m := range p.queue {
		if m.upload && m.msg.Index == index && m.msg.Begin == begin && m.msg.Length == length {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			p.queuedUploads.Add(-1)
			return true
		}
	}
	return false
}

// uploadsPerBatch is how many queued uploads the writer takes at a time. Uploads it has
// taken can no longer be cancelled, and a reader that seeks cancels its old requests: a
// short batch keeps cancels effective while still filling a socket write.
const uploadsPerBatch = 4

// takeBatch moves to batch every queued control message (they overtake queued uploads:
// have, request and cancel should not wait behind block data) and the first few uploads.
func (p *peerConn) takeBatch(batch []outMsg) []outMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	uploads := 0
	kept := p.queue[:0]
	for _, m := range p.queue {
		if m.upload {
			if uploads == uploadsPerBatch {
				kept = append(kept, m)
				continue
			}
			uploads++
		}
		batch = append(batch, m)
	}
	clear(p.queue[len(kept):])
	p.queue = kept
	return batch
}

// unchoke queues our unchoke and lets the reader serve the peer's requests from then on.
func (p *peerConn) unchoke() {
	p.mu.Lock()
	p.queue = append(p.queue, outMsg{msg: wire.Message{ID: wire.Unchoke}})
	p.serving = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// queueRequest queues an upload for the reader, as sendUpload does for the loop, if the
// peer is unchoked and its queue has room; false leaves the request to the loop.
func (p *peerConn) queueRequest(index, begin, length uint32) bool {
	p.mu.Lock()
	if !p.serving || p.queuedUploads.Load() >= maxUploadQueue {
		p.mu.Unlock()
		return false
	}
	p.queuedUploads.Add(1)
	p.queue = append(p.queue, outMsg{msg: wire.Message{ID: wire.Piece, Index: index, Begin: begin, Length: length}, upload: true})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

// dropUploads removes every queued upload (we choked the peer) and returns them; the
// reader queues no more of its requests until the next unchoke.
func (p *peerConn) dropUploads() []wire.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serving = false
	var dropped []wire.Message
	kept := p.queue[:0]
	for _, m := range p.queue {
		if m.upload {
			dropped = append(dropped, m.msg)
		} else {
			kept = append(kept, m)
		}
	}
	p.queue = kept
	p.queuedUploads.Add(-int32(len(dropped)))
	return dropped
}

// close shuts the connection; the goroutines exit on their own. Safe to call many times.
func (p *peerConn) close() {
	p.once.Do(func() {
		close(p.closing)
		p.conn.Close()
		if p.release != nil {
			p.release()
		}
	})
}

// blockReader reads a block for upload into buf; it is the torrent's storage.
type blockReader func(piece, begin int, buf []byte) error

// peerIO is what a connection's goroutines need from the torrent.
type peerIO struct {
	events    chan<- any
	closed    <-chan struct{}
	readBlock blockReader
	pieceSize func(piece int) int64
	maxMsgLen int
	upLimit   *rateLimiter
	downLimit *rateLimiter
	uploaded  *atomic.Int64
	blockPool *sync.Pool
	// serveRequest queues an upload for a request on the reader goroutine when the loop
	// would queue it anyway (Torrent.serveRequest); false hands the request to the loop.
	serveRequest func(p *peerConn, m wire.Message) bool
}

// start launches the reader and writer goroutines.
func (p *peerConn) start(io peerIO) {
	p.done.Add(2)
	go p.readLoop(io)
	go p.writeLoop(io)
}

// peerMsg is a message from a peer for the loop.
type peerMsg struct {
	p   *peerConn
	msg wire.Message
	buf *[]byte // the pooled buffer behind msg.Block, returned by the loop
}

// peerGone tells the loop that a connection ended.
type peerGone struct {
	p   *peerConn
	err error
}

func (p *peerConn) readLoop(io peerIO) {
	defer p.done.Done()
	// The wire reader buffers by itself.
	r := wire.NewReader(p.conn, io.maxMsgLen)
	var err error
	var deadline time.Time
	for {
		// Moving the deadline is a timer update in the runtime: once a second is enough
		// for a three-minute timeout, rather than once a message.
		if d := time.Now().Add(readTimeout); d.Sub(deadline) > time.Second {
			deadline = d
			p.conn.SetReadDeadline(d)
		}
		var m wire.Message
		m, err = r.Read()
		if err != nil {
			break
		}
		ev := peerMsg{p: p, msg: m}
		switch m.ID {
		case wire.Request:
			// Most requests of an unchoked peer are served without waking the loop: on a
			// seeder, that round trip was a third of the goroutine switches per block.
			if io.serveRequest != nil && io.serveRequest(p, m) {
				continue
			}
		case wire.Piece:
			// The reader's buffer is reused by the next Read: copy the block out.
			bp := io.blockPool.Get().(*[]byte)
			if cap(*bp) < len(m.Block) {
				*bp = make([]byte, len(m.Block))
			}
			*bp = (*bp)[:len(m.Block)]
			copy(*bp, m.Block)
			ev.msg.Block, ev.buf = *bp, bp
			p.downloaded.Add(int64(len(m.Block)))
			if io.downLimit != nil {
				io.downLimit.wait(len(m.Block), p.closing)
			}
		case wire.Bitfield:
			ev.msg.Bitfield = append([]byte(nil), m.Bitfield...)
		default:
			if m.Payload != nil {
				ev.msg.Payload = append([]byte(nil), m.Payload...)
			}
		}
		select {
		case io.events <- ev:
		case <-p.closing:
			if ev.buf != nil {
				io.blockPool.Put(ev.buf)
			}
			return
		case <-io.closed:
			return
		}
	}
	select {
	case io.events <- peerGone{p: p, err: err}:
	case <-io.closed:
	}
}

func (p *peerConn) writeLoop(io peerIO) {
	defer p.done.Done()
	defer p.conn.Close() // a write error ends the reader too
	w := bufio.NewWriterSize(p.conn, 64<<10)
	up := newUploadReader()
	var frame []byte
	keepalive := time.NewTimer(keepaliveEvery)
	defer keepalive.Stop()
	var batch []outMsg
	for {
		batch = p.takeBatch(batch[:0])
		if len(batch) == 0 {
			select {
			case <-p.wake:
				continue
			case <-keepalive.C:
				batch = []outMsg{{msg: wire.Message{Keepalive: true}}}
			case <-p.closing:
				return
			case <-io.closed:
				return
			}
		}
		keepalive.Reset(keepaliveEvery)
		p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		for _, m := range batch {
			if !m.upload {
				frame = m.msg.AppendTo(frame[:0])
				if _, err := w.Write(frame); err != nil {
					return
				}
				continue
			}
			p.queuedUploads.Add(-1)
			n := int(m.msg.Length)
			block, err := up.block(io.readBlock, io.pieceSize(int(m.msg.Index)), int(m.msg.Index), int(m.msg.Begin), n)
			if err != nil {
				p.log.WithError(err).Debug("upload read failed")
				continue
			}
			if io.upLimit != nil {
				// Flush what is buffered first so control messages are not held up.
				if err := w.Flush(); err != nil {
					return
				}
				if !io.upLimit.wait(n, p.closing) {
					return
				}
				p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			}
			frame = wire.AppendPieceHeader(frame[:0], m.msg.Index, m.msg.Begin, n)
			if _, err := w.Write(frame); err != nil {
				return
			}
			if _, err := w.Write(block); err != nil {
				return
			}
			p.uploaded.Add(int64(n))
			io.uploaded.Add(int64(n))
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

const wireBlockSize = 16 << 10
