package utp

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Bounds on what one socket holds, whatever its peers send.
const (
	maxConns      = 1024 // connections of all states
	acceptBacklog = 64   // answered SYNs waiting for Accept; more SYNs are dropped
	tickInterval  = 10 * time.Millisecond
	socketBuffer  = 4 << 20 // kernel receive buffer asked for the packet connection
)

// ErrReset is returned by a connection the peer reset (ST_RESET) or that timed out.
var ErrReset = errors.New("utp: connection reset")

// ErrTimeout is returned by a connection whose peer stopped answering.
var ErrTimeout = errors.New("utp: connection timed out")

type connKey struct {
	addr netip.AddrPort
	id   uint16 // the connection id the peer puts in its packets: our receive id
}

// Socket runs uTP connections over one packet connection, which it owns and closes.
type Socket struct {
	pc    net.PacketConn
	log   *logrus.Entry
	epoch time.Time

	mu      sync.Mutex // guards everything below and the state of every Conn of the socket
	conns   map[connKey]*Conn
	closed  bool
	scratch []byte // encoding buffer for outgoing packets
	// deadSilence is how long a connection with data in flight may hear nothing from
	// its peer before it is dead (const deadSilence; tests shorten it).
	deadSilence time.Duration

	acceptQ chan *Conn    // filled only by the reader, under mu, never blocking
	busy    chan struct{} // cap 1: a connection was added; wakes a sleeping tickLoop
	closing chan struct{}
	wg      sync.WaitGroup
	ticks   atomic.Int64 // timer rounds run (tests read it)
}

// NewSocket starts serving uTP on pc: one goroutine reads and dispatches its packets,
// another runs the timers (delayed ACKs, retransmissions). Close stops both and closes pc.
func NewSocket(pc net.PacketConn, log *logrus.Entry) *Socket {
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		log = logrus.NewEntry(l)
	}
	// A window of packets arrives faster than one goroutine reads them; the default
	// buffer (about 200 KiB) would drop the tail of every burst.
	if b, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
		b.SetReadBuffer(socketBuffer)
	}
	s := &Socket{
		pc:          pc,
		log:         log,
		epoch:       time.Now(),
		conns:       make(map[connKey]*Conn),
		acceptQ:     make(chan *Conn, acceptBacklog),
		deadSilence: deadSilence,
		busy:        make(chan struct{}, 1),
		closing:     make(chan struct{}),
	}
	s.wg.Add(2)
	go s.readLoop()
	go s.tickLoop()
	return s
}

// Addr is the local address of the socket.
func (s *Socket) Addr() net.Addr { return s.pc.LocalAddr() }

// Close resets every connection, closes the packet connection and waits for the
// socket's goroutines.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, c := range s.conns {
		if c.state != stateSynSent {
			c.sendControl(stReset)
		}
		c.fail(net.ErrClosed)
	}
	s.mu.Unlock()
	close(s.closing)
	err := s.pc.Close()
	s.wg.Wait()
	return err
}

// Accept waits for a peer's connection.
func (s *Socket) Accept() (net.Conn, error) {
	select {
	case c := <-s.acceptQ:
		return c, nil
	case <-s.closing:
		return nil, net.ErrClosed
	}
}

// DialContext connects to a uTP peer: it sends SYNs until the peer answers, ctx ends or
// a few retransmissions went unanswered.
func (s *Socket) DialContext(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	if len(s.conns) >= maxConns {
		s.mu.Unlock()
		return nil, errors.New("utp: too many connections")
	}
	var id uint16
	for {
		id = uint16(rand.Uint32())
		_, a := s.conns[connKey{addr, id}]
		_, b := s.conns[connKey{addr, id + 1}]
		if !a && !b {
			break
		}
	}
	c := newConn(s, addr, id, id+1)
	c.state = stateSynSent
	c.seqNr = 1
	s.conns[connKey{addr, id}] = c
	s.wakeTicks()
	c.sendSyn(time.Now())
	s.mu.Unlock()

	select {
	case <-c.connected:
	case <-ctx.Done():
	case <-s.closing:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case c.state == stateConnected:
		return c, nil
	case c.err != nil:
		return nil, c.err
	case s.closed:
		c.fail(net.ErrClosed)
		return nil, net.ErrClosed
	}
	c.fail(ctx.Err())
	return nil, ctx.Err()
}

// micros is our clock for packet timestamps.
func (s *Socket) micros(now time.Time) uint32 {
	return uint32(now.Sub(s.epoch) / time.Microsecond)
}

// write sends one packet; s.mu is held.
func (s *Socket) write(h *header, to *net.UDPAddr) {
	s.scratch = h.encode(s.scratch[:0])
	if _, err := s.pc.WriteTo(s.scratch, to); err != nil && s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		s.log.WithError(err).WithField("peer", to).Debug("utp: send")
	}
}

func (s *Socket) readLoop() {
	defer s.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-s.closing:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.WithError(err).Debug("utp: read")
			select {
			case <-s.closing:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		h, err := decode(buf[:n])
		if err != nil {
			// A packet dropped here leaves no other trace (libtorrent's odd-length SACKs did).
			if s.log.Logger.IsLevelEnabled(logrus.TraceLevel) {
				s.log.WithField("peer", from).Tracef("utp: recv undecodable, %d bytes: %x", n, buf[:min(n, headerLen+8)])
			}
			continue
		}
		ap := ua.AddrPort()
		s.dispatch(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), &h, time.Now())
	}
}

func (s *Socket) dispatch(from netip.AddrPort, h *header, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.log.Logger.IsLevelEnabled(logrus.TraceLevel) {
		s.log.WithField("peer", from).Tracef("utp: recv %s id %d seq %d ack %d wnd %d len %d sack %x",
			typeName(h.typ), h.connID, h.seq, h.ack, h.wnd, len(h.payload), h.sack)
	}
	switch h.typ {
	case stSyn:
		s.onSyn(from, h, now)
	case stReset:
		// The id is our receive id, or our send id (one off it either way).
		for _, id := range []uint16{h.connID, h.connID + 1, h.connID - 1} {
			if c := s.conns[connKey{from, id}]; c != nil && (id == h.connID || c.sendID == h.connID) {
				c.fail(ErrReset)
				return
			}
		}
	default:
		c := s.conns[connKey{from, h.connID}]
		if c == nil {
			s.write(&header{typ: stReset, connID: h.connID, ts: s.micros(now), ack: h.seq}, net.UDPAddrFromAddrPort(from))
			return
		}
		c.onPacket(h, now)
	}
}

func (s *Socket) onSyn(from netip.AddrPort, h *header, now time.Time) {
	key := connKey{from, h.connID + 1}
	if c := s.conns[key]; c != nil {
		if c.acceptor && c.synSeq == h.seq && c.state == stateConnected {
			c.sendAck(now) // our answer was lost
		}
		return
	}
	if len(s.conns) >= maxConns || len(s.acceptQ) == cap(s.acceptQ) {
		return // a SYN flood costs nothing past these bounds
	}
	c := newConn(s, from, h.connID+1, h.connID)
	c.acceptor = true
	c.synSeq = h.seq
	c.ackNr = h.seq
	c.seqNr = uint16(rand.Uint32())
	c.state = stateConnected
	close(c.connected)
	c.lastRecv = now
	c.replyMicro = s.micros(now) - h.ts
	c.peerWnd = int(h.wnd)
	s.conns[key] = c
	s.wakeTicks()
	c.sendAck(now)
	s.acceptQ <- c
}

// tickLoop runs the connections' timers every tickInterval while there are any. A socket
// without connections (a client whose peers all speak TCP) sleeps until one is added,
// rather than waking a hundred times a second for nothing.
func (s *Socket) tickLoop() {
	defer s.wg.Done()
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case now := <-t.C:
			s.ticks.Add(1)
			s.mu.Lock()
			for _, c := range s.conns {
				c.tick(now)
			}
			idle := len(s.conns) == 0
			s.mu.Unlock()
			if !idle {
				continue
			}
			t.Stop()
			select {
			case <-s.closing:
				return
			case <-s.busy:
			}
			t.Reset(tickInterval)
		}
	}
}

// wakeTicks tells tickLoop a connection was added; s.mu is held.
func (s *Socket) wakeTicks() {
	select {
	case s.busy <- struct{}{}:
	default:
	}
}

// remove forgets a connection; s.mu is held.
func (s *Socket) remove(c *Conn) {
	if s.conns[connKey{c.remote, c.recvID}] == c {
		delete(s.conns, connKey{c.remote, c.recvID})
	}
}

func typeName(t uint8) string {
	return [...]string{"DATA", "FIN", "STATE", "RESET", "SYN"}[t]
}
