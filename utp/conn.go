package utp

import (
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/sirupsen/logrus"
)

// Sizes and times of a connection (BEP 29 where it says).
const (
	packetSize   = 1400                   // a datagram, header included: fits common MTUs
	maxPayload   = packetSize - headerLen // data bytes a packet carries
	recvBufMax   = 1 << 20                // bytes received but not read, in order or not
	sendBufMax   = 256 << 10              // bytes written but not yet sent
	maxInflight  = 2048                   // packets sent and not yet acknowledged
	maxReorder   = 2048                   // how far past ack_nr a packet may be kept
	maxWindowCap = 4 << 20                // congestion window ceiling, bytes
	minWindow    = packetSize             // congestion window floor
	initWindow   = 4 * packetSize         // congestion window of a new connection
	targetDelay  = 100_000                // LEDBAT target queuing delay, microseconds
	maxGain      = 3000                   // LEDBAT window growth at most, bytes per RTT
	ackDelay     = 20 * time.Millisecond  // an in-order packet waits this long for company (ACK every 4th)
	minRTO       = 500 * time.Millisecond // retransmission timeout floor
	initRTO      = time.Second            // before any RTT sample
	maxRTO       = 30 * time.Second
	maxTimeouts  = 8                // consecutive timeouts before the connection dies
	synTries     = 5                // SYNs a dial sends
	lingerMax    = 30 * time.Second // a closed connection's wait for its data to go
	idleMax      = 5 * time.Minute  // silence after which a connection is dead
	// deadSilence is the silence after which a connection with data in flight is dead.
	// libtorrent 2.0 never resets a connection it has forgotten, so without this a peer
	// gone quiet was resent to through maxTimeouts doubling timeouts, about two minutes,
	// and its swarm kept it meanwhile. A live peer acknowledges within a round trip.
	deadSilence = 20 * time.Second
	keepAlive   = 29 * time.Second // an idle connection sends an ACK this often (NAT mappings)
)

const (
	stateSynSent = iota
	stateConnected
	stateGone // removed from the socket
)

// outPacket is a sent packet not yet acknowledged.
type outPacket struct {
	seq        uint16
	typ        uint8
	payload    []byte
	sentAt     time.Time
	sends      int
	acked      bool // selectively acknowledged
	inFlight   bool // counted in the window
	needResend bool
}

// Conn is a uTP connection. Its state is guarded by its socket's mutex.
type Conn struct {
	s                *Socket
	remote           netip.AddrPort
	udpAddr          *net.UDPAddr
	recvID, sendID   uint16
	acceptor, closed bool // closed: Close was called
	synSeq           uint16
	connected        chan struct{} // closed when the handshake is done or failed

	state int
	err   error // why the connection died, if it did

	// sending
	seqNr      uint16 // next sequence number to use
	inflight   []*outPacket
	curWindow  int // bytes in flight
	maxWindow  float64
	peerWnd    int
	sendBuf    []byte
	finSent    bool
	finAcked   bool
	closedAt   time.Time
	lastAck    uint16
	dupAcks    int
	slowStart  bool
	ssthresh   float64
	lastLoss   time.Time
	delays     delayHistory
	rtt        time.Duration
	rttVar     time.Duration
	rto        time.Duration
	rtoAt      time.Time // when the oldest packet in flight times out; zero: none
	timeouts   int
	synSends   int
	replyMicro uint32 // our clock minus the peer's at its last packet: its one-way delay

	// receiving
	ackNr      uint16 // last sequence number received in order
	rbuf       []byte // rbuf[roff:] is data to read
	roff       int
	reorder    map[uint16][]byte
	reordBytes int
	gotFin     bool
	eofSeq     uint16
	eof        bool // every packet up to the FIN arrived
	ackPending int  // packets received since our last ACK
	ackDue     time.Time
	lastWnd    int // window we last advertised
	lastRecv   time.Time
	lastSend   time.Time

	notify        chan struct{} // closed and replaced when anything a waiter may want changes
	readDeadline  time.Time
	writeDeadline time.Time
}

var _ net.Conn = (*Conn)(nil)

func newConn(s *Socket, remote netip.AddrPort, recvID, sendID uint16) *Conn {
	return &Conn{
		s: s, remote: remote, udpAddr: net.UDPAddrFromAddrPort(remote),
		recvID: recvID, sendID: sendID,
		connected: make(chan struct{}),
		maxWindow: initWindow, slowStart: true, ssthresh: maxWindowCap,
		peerWnd: packetSize, rto: initRTO,
		reorder: make(map[uint16][]byte),
		notify:  make(chan struct{}),
	}
}

func (c *Conn) broadcast() {
	close(c.notify)
	c.notify = make(chan struct{})
}

// fail ends the connection with err (nil: an orderly end) and forgets it.
func (c *Conn) fail(err error) {
	if c.state == stateGone {
		return
	}
	if c.err == nil {
		c.err = err
	}
	if c.state == stateSynSent {
		close(c.connected)
	}
	c.state = stateGone
	c.s.remove(c)
	c.broadcast()
}

func (c *Conn) recvWindow() int {
	if w := recvBufMax - (len(c.rbuf) - c.roff) - c.reordBytes; w > 0 {
		return w
	}
	return 0
}

func (c *Conn) send(typ uint8, seq uint16, payload, sack []byte, now time.Time) {
	h := header{typ: typ, connID: c.sendID, ts: c.s.micros(now), tsDiff: c.replyMicro,
		wnd: uint32(c.recvWindow()), seq: seq, ack: c.ackNr, sack: sack, payload: payload}
	if typ == stSyn {
		h.connID = c.recvID
		h.tsDiff = 0
	}
	c.lastWnd = int(h.wnd)
	c.lastSend = now
	c.ackPending = 0
	c.ackDue = time.Time{}
	if c.s.log.Logger.IsLevelEnabled(logrus.TraceLevel) {
		c.s.log.WithField("peer", c.remote).Tracef("utp: send %s id %d seq %d ack %d wnd %d len %d sack %x",
			typeName(typ), h.connID, seq, h.ack, h.wnd, len(payload), sack)
	}
	c.s.write(&h, c.udpAddr)
}

func (c *Conn) sendControl(typ uint8) { c.send(typ, c.seqNr, nil, nil, time.Now()) }

func (c *Conn) sendSyn(now time.Time) {
	c.synSends++
	c.send(stSyn, 1, nil, nil, now)
	c.seqNr = 2
	c.rtoAt = now.Add(c.rto)
}

// sendAck sends an ST_STATE, with a selective ACK when packets past a gap are kept.
func (c *Conn) sendAck(now time.Time) {
	var sack []byte
	if len(c.reorder) > 0 {
		var mask [maxSACKBytes]byte
		top := -1
		for seq := range c.reorder {
			i := int(seq - c.ackNr - 2)
			if i >= 0 && i < maxSACKBytes*8 {
				mask[i/8] |= 1 << (i % 8)
				top = max(top, i)
			}
		}
		if top >= 0 {
			sack = mask[:(top/32+1)*4]
		}
	}
	c.send(stState, c.seqNr, nil, sack, now)
}

// onPacket handles a packet of this connection (not SYN, not RESET).
func (c *Conn) onPacket(h *header, now time.Time) {
	c.lastRecv = now
	c.replyMicro = c.s.micros(now) - h.ts
	c.peerWnd = int(h.wnd)
	if c.state == stateSynSent {
		if h.typ != stState {
			return
		}
		c.ackNr = h.seq - 1
		c.state = stateConnected
		close(c.connected)
	}
	c.onAck(h, now)
	ackNow := false
	switch h.typ {
	case stData:
		ackNow = c.onData(h.seq, h.payload)
	case stFin:
		ackNow = c.onFin(h.seq)
	}
	c.flush(now)
	switch {
	case ackNow || c.ackPending >= 4:
		c.sendAck(now)
	case c.ackPending > 0 && c.ackDue.IsZero():
		c.ackDue = now.Add(ackDelay)
	}
	c.maybeDone()
	c.broadcast()
}

// onAck takes what a packet acknowledges, cumulatively and selectively, and runs
// congestion control on it.
func (c *Conn) onAck(h *header, now time.Time) {
	if len(c.inflight) == 0 {
		c.lastAck = h.ack
		return
	}
	first := c.inflight[0].seq
	if seqLess(h.ack, first-1) || seqLess(c.seqNr-1, h.ack) {
		return // old, or acknowledges what we never sent
	}
	acked := 0
	var sample time.Duration
	take := func(p *outPacket) {
		if p.acked {
			return
		}
		p.acked = true
		acked += len(p.payload) + headerLen
		if p.inFlight {
			c.curWindow -= len(p.payload) + headerLen
			p.inFlight = false
		}
		if p.sends == 1 {
			sample = now.Sub(p.sentAt)
		}
		if p.typ == stFin {
			c.finAcked = true
		}
	}
	for len(c.inflight) > 0 && !seqLess(h.ack, c.inflight[0].seq) {
		take(c.inflight[0])
		c.inflight[0] = nil
		c.inflight = c.inflight[1:]
	}
	if h.sack != nil && len(c.inflight) > 0 {
		base := h.ack + 2
		later := 0 // selectively acknowledged packets past the one looked at
		for i := len(h.sack)*8 - 1; i >= 0; i-- {
			idx := int(base + uint16(i) - c.inflight[0].seq)
			if idx < 0 || idx >= len(c.inflight) {
				continue
			}
			p := c.inflight[idx]
			if h.sack[i/8]&(1<<(i%8)) != 0 {
				take(p)
				later++
				continue
			}
			if later >= 3 && !p.acked && p.inFlight && (p.sends == 1 || now.Sub(p.sentAt) > c.rtt) {
				c.lost(p, now)
			}
		}
		// ack_nr+1 itself is missing when a SACK comes.
		if p := c.inflight[0]; later >= 3 && p.seq == h.ack+1 && !p.acked && p.inFlight &&
			(p.sends == 1 || now.Sub(p.sentAt) > c.rtt) {
			c.lost(p, now)
		}
	}
	if sample > 0 {
		c.rttSample(sample)
	}
	if acked > 0 {
		c.dupAcks = 0
		c.timeouts = 0
		c.rtoAt = time.Time{}
		if len(c.inflight) > 0 {
			c.rtoAt = now.Add(c.rto)
		}
		c.ledbat(acked, h.tsDiff, now)
	} else if h.ack == c.lastAck && h.typ == stState {
		c.dupAcks++
		if p := c.inflight[0]; c.dupAcks == 3 && !p.acked && p.inFlight {
			c.lost(p, now)
		}
	}
	c.lastAck = h.ack
	for len(c.inflight) > 0 && c.inflight[0].acked {
		c.inflight[0] = nil
		c.inflight = c.inflight[1:]
	}
}

// lost marks a packet for a resend and shrinks the window, once per round trip.
func (c *Conn) lost(p *outPacket, now time.Time) {
	p.needResend = true
	p.inFlight = false
	c.curWindow -= len(p.payload) + headerLen
	if now.Sub(c.lastLoss) > c.rtt {
		c.lastLoss = now
		c.maxWindow = max(c.maxWindow/2, minWindow)
		c.slowStart = false
	}
}

func (c *Conn) rttSample(d time.Duration) {
	if c.rtt == 0 {
		c.rtt, c.rttVar = d, d/2
	} else {
		delta := c.rtt - d
		if delta < 0 {
			delta = -delta
		}
		c.rttVar += (delta - c.rttVar) / 4
		c.rtt += (d - c.rtt) / 8
	}
	c.rto = max(c.rtt+4*c.rttVar, minRTO)
}

// ledbat grows or shrinks the congestion window from the queuing delay the peer saw on
// our packets (BEP 29): toward a target delay, slow start until the delay shows.
func (c *Conn) ledbat(acked int, delaySample uint32, now time.Time) {
	offTarget := float64(targetDelay)
	if delaySample != 0 {
		c.delays.add(delaySample, now)
		q := float64(c.delays.queuing(delaySample))
		offTarget = float64(targetDelay) - q
		if c.slowStart && q > targetDelay/2 {
			c.slowStart = false
		}
	}
	if c.slowStart && c.maxWindow >= c.ssthresh {
		c.slowStart = false
	}
	if c.slowStart {
		c.maxWindow += float64(acked)
	} else {
		offTarget = max(offTarget, -targetDelay)
		c.maxWindow += maxGain * offTarget / targetDelay * float64(acked) / c.maxWindow
	}
	c.maxWindow = min(max(c.maxWindow, minWindow), maxWindowCap)
}

// onData takes a data packet; it says whether to acknowledge at once.
func (c *Conn) onData(seq uint16, payload []byte) bool {
	if !seqLess(c.ackNr, seq) {
		return true // a duplicate: our ACK may have been lost
	}
	if c.gotFin && !seqLess(seq, c.eofSeq) || int(seq-c.ackNr) > maxReorder {
		return false
	}
	if seq != c.ackNr+1 {
		if _, ok := c.reorder[seq]; !ok && len(payload) <= c.recvWindow() {
			c.reorder[seq] = append([]byte(nil), payload...)
			c.reordBytes += len(payload)
		}
		return true
	}
	if !c.closed && len(payload) > c.recvWindow() {
		return true // no room: it comes again
	}
	c.deliver(payload)
	c.ackNr++
	for {
		p, ok := c.reorder[c.ackNr+1]
		if !ok {
			break
		}
		delete(c.reorder, c.ackNr+1)
		c.reordBytes -= len(p)
		c.deliver(p)
		c.ackNr++
	}
	c.ackPending++
	if c.gotFin && c.ackNr+1 == c.eofSeq {
		c.ackNr = c.eofSeq
		c.eof = true
		return true
	}
	return len(c.reorder) > 0
}

func (c *Conn) deliver(p []byte) {
	if c.closed {
		return // nobody reads any more
	}
	if c.roff > 0 && c.roff >= len(c.rbuf)/2 {
		c.rbuf = c.rbuf[:copy(c.rbuf, c.rbuf[c.roff:])]
		c.roff = 0
	}
	c.rbuf = append(c.rbuf, p...)
}

func (c *Conn) onFin(seq uint16) bool {
	if c.gotFin || !seqLess(c.ackNr, seq) || int(seq-c.ackNr) > maxReorder {
		return true
	}
	c.gotFin = true
	c.eofSeq = seq
	if seq == c.ackNr+1 {
		c.ackNr = seq
		c.eof = true
	}
	return true
}

// flush sends what the windows allow: packets to resend first, then new data, then the
// FIN of a closed connection.
func (c *Conn) flush(now time.Time) {
	if c.state != stateConnected {
		return
	}
	wnd := min(int(c.maxWindow), c.peerWnd)
	fits := func(n int) bool { return c.curWindow == 0 || c.curWindow+n+headerLen <= wnd }
	// The first packet to resend goes even when the window is full, as TCP's fast
	// retransmit does: packets the peer got past the reach of its SACK mask (libtorrent's
	// starts at the hole but is only as long as the span of what it holds) still count in
	// curWindow, and once a loss halved the window they held every resend back until the
	// RTO, while the peer waited for the hole to fill.
	resent := false
	for _, p := range c.inflight {
		if p.needResend && !p.acked {
			if resent && !fits(len(p.payload)) {
				return
			}
			c.transmit(p, now)
			resent = true
		}
	}
	sent := false
	for len(c.sendBuf) > 0 && len(c.inflight) < maxInflight {
		n := min(len(c.sendBuf), maxPayload)
		if !fits(n) {
			break
		}
		p := &outPacket{seq: c.seqNr, typ: stData, payload: append([]byte(nil), c.sendBuf[:n]...)}
		c.seqNr++
		c.sendBuf = c.sendBuf[n:]
		c.inflight = append(c.inflight, p)
		c.transmit(p, now)
		sent = true
	}
	if len(c.sendBuf) == 0 {
		c.sendBuf = nil
	}
	if c.closed && !c.finSent && len(c.sendBuf) == 0 && len(c.inflight) < maxInflight {
		p := &outPacket{seq: c.seqNr, typ: stFin}
		c.seqNr++
		c.finSent = true
		c.inflight = append(c.inflight, p)
		c.transmit(p, now)
	}
	if sent {
		c.broadcast()
	}
}

func (c *Conn) transmit(p *outPacket, now time.Time) {
	p.sends++
	p.sentAt = now
	p.needResend = false
	if !p.inFlight {
		p.inFlight = true
		c.curWindow += len(p.payload) + headerLen
	}
	if c.rtoAt.IsZero() {
		c.rtoAt = now.Add(c.rto)
	}
	c.send(p.typ, p.seq, p.payload, nil, now)
}

// tick runs the connection's timers.
func (c *Conn) tick(now time.Time) {
	if c.state == stateSynSent {
		if now.After(c.rtoAt) {
			if c.synSends >= synTries {
				c.fail(ErrTimeout)
				return
			}
			c.rto = min(2*c.rto, maxRTO)
			c.sendSyn(now)
		}
		return
	}
	if c.ackPending > 0 && !c.ackDue.IsZero() && !now.Before(c.ackDue) || now.Sub(c.lastSend) > keepAlive {
		c.sendAck(now)
	}
	if !c.rtoAt.IsZero() && !now.Before(c.rtoAt) && len(c.inflight) > 0 {
		c.timeouts++
		if c.timeouts > maxTimeouts {
			c.sendControl(stReset)
			c.fail(ErrTimeout)
			return
		}
		c.s.log.WithField("peer", c.remote).Debugf("utp: timeout %d, window %.0f, %d packets in flight, rto %v",
			c.timeouts, c.maxWindow, len(c.inflight), c.rto)
		c.ssthresh = max(c.maxWindow/2, 2*minWindow)
		c.maxWindow = minWindow
		c.slowStart = true
		for _, p := range c.inflight {
			if !p.acked {
				p.needResend = true
				p.inFlight = false
			}
		}
		c.curWindow = 0
		c.rto = min(2*c.rto, maxRTO)
		c.rtoAt = now.Add(c.rto)
		c.flush(now)
	}
	if c.closed && now.Sub(c.closedAt) > lingerMax || now.Sub(c.lastRecv) > idleMax ||
		len(c.inflight) > 0 && now.Sub(c.lastRecv) > c.s.deadSilence {
		c.sendControl(stReset)
		c.fail(ErrTimeout)
	}
}

// maybeDone forgets a closed connection once its FIN is acknowledged.
func (c *Conn) maybeDone() {
	if c.closed && c.finAcked {
		c.fail(nil)
	}
}

// wait releases the socket's mutex until the connection changes or deadline passes; it
// reports false when the deadline passed.
func (c *Conn) wait(deadline time.Time) bool {
	ch := c.notify
	c.s.mu.Unlock()
	defer c.s.mu.Lock()
	if deadline.IsZero() {
		select {
		case <-ch:
		case <-c.s.closing:
		}
		return true
	}
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-c.s.closing:
		return true
	case <-t.C:
		return false
	}
}

// Read reads data in order; io.EOF once the peer's FIN and all before it arrived.
func (c *Conn) Read(b []byte) (int, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, net.ErrClosed
		case len(c.rbuf) > c.roff:
			if len(b) == 0 {
				return 0, nil
			}
			n := copy(b, c.rbuf[c.roff:])
			c.roff += n
			if c.roff == len(c.rbuf) {
				c.rbuf, c.roff = c.rbuf[:0], 0
			}
			// A window that was nearly shut and is open again: tell the peer.
			if c.state == stateConnected && c.lastWnd < recvBufMax/4 && c.recvWindow() >= recvBufMax/2 {
				c.sendAck(time.Now())
			}
			return n, nil
		case c.eof:
			return 0, io.EOF
		case c.err != nil:
			return 0, c.err
		case c.s.closed:
			return 0, net.ErrClosed
		}
		if !c.readDeadline.IsZero() && !time.Now().Before(c.readDeadline) || !c.wait(c.readDeadline) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Write queues b for sending, waiting while the send buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	n := 0
	for len(b) > 0 {
		switch {
		case c.closed:
			return n, net.ErrClosed
		case c.err != nil:
			return n, c.err
		case c.state != stateConnected:
			return n, net.ErrClosed
		}
		if room := sendBufMax - len(c.sendBuf); room > 0 {
			k := min(room, len(b))
			c.sendBuf = append(c.sendBuf, b[:k]...)
			b, n = b[k:], n+k
			c.flush(time.Now())
			continue
		}
		if !c.writeDeadline.IsZero() && !time.Now().Before(c.writeDeadline) || !c.wait(c.writeDeadline) {
			return n, os.ErrDeadlineExceeded
		}
	}
	return n, nil
}

// Close sends what is still buffered, then a FIN, in the background (for a while at most);
// reads and writes fail at once.
func (c *Conn) Close() error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.closedAt = time.Now()
	c.rbuf, c.roff = nil, 0
	c.reorder, c.reordBytes = map[uint16][]byte{}, 0
	if c.state == stateConnected {
		c.flush(c.closedAt)
	}
	c.maybeDone()
	c.broadcast()
	return nil
}

func (c *Conn) LocalAddr() net.Addr  { return c.s.pc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.udpAddr }

func (c *Conn) SetDeadline(t time.Time) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.readDeadline, c.writeDeadline = t, t
	c.broadcast()
	return nil
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.readDeadline = t
	c.broadcast()
	return nil
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.writeDeadline = t
	c.broadcast()
	return nil
}

// delayHistory keeps the lowest one-way delay sample of each of the last few minutes: their
// minimum is the base delay (the clocks' offset plus the path's own delay), and a sample
// above it is queuing.
type delayHistory struct {
	mins     [2]uint32
	n        int
	cur      uint32
	curStart time.Time
}

// wrapLess compares clock values that may have wrapped.
func wrapLess(a, b uint32) bool { return int32(a-b) < 0 }

func (d *delayHistory) add(s uint32, now time.Time) {
	switch {
	case d.n == 0:
		d.cur, d.curStart, d.n = s, now, 1
	case now.Sub(d.curStart) >= time.Minute:
		d.mins[1], d.mins[0] = d.mins[0], d.cur
		d.cur, d.curStart = s, now
		d.n = min(d.n+1, len(d.mins)+1)
	case wrapLess(s, d.cur):
		d.cur = s
	}
}

func (d *delayHistory) queuing(s uint32) uint32 {
	base := d.cur
	for i := 0; i < d.n-1; i++ {
		if wrapLess(d.mins[i], base) {
			base = d.mins[i]
		}
	}
	if wrapLess(s, base) {
		return 0
	}
	return s - base
}
