package dht

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Config says how to run a Node. Zero limits take the defaults named beside them.
type Config struct {
	Conn       net.PacketConn // the socket to use, left open by Close; nil = listen on Addr
	Addr       string         // e.g. "0.0.0.0:6881" when Conn is nil
	Bootstrap  []string       // "host:port" of nodes to start from, resolved when needed; empty = none
	StateFile  string         // routing table saved on Close and loaded on New; "" = none
	ExternalIP netip.Addr     // when known, our ID is a BEP 42 secure ID for it
	Log        *logrus.Entry  // nil = no logs

	QueriesPerSecond      float64       // queries answered per second, all sources (500)
	QueriesPerSecondPerIP float64       // queries answered per second per source IP (20)
	OutgoingPerSecond     float64       // queries we send per second (250)
	MaxTorrents           int           // infohashes in the peer store (2000)
	MaxPeersPerTorrent    int           // peers stored per infohash (200)
	MaxPending            int           // our queries in flight (1024)
	QueryTimeout          time.Duration // how long we wait for an answer (2 s)

	// FindPeers pacing: retryMin is the first retry after a round that found no peers (2 s,
	// doubling up to reannounce: a bare magnet waits for its first peer on it); reannounce
	// is the period once peers are found (15 min).
	// Tests shorten them.
	retryMin, reannounce time.Duration
}

func (c *Config) setDefaults() {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.QueriesPerSecond, 500)
	def(&c.QueriesPerSecondPerIP, 20)
	def(&c.OutgoingPerSecond, 250)
	defInt(&c.MaxTorrents, 2000)
	defInt(&c.MaxPeersPerTorrent, 200)
	defInt(&c.MaxPending, 1024)
	defDur(&c.QueryTimeout, 2*time.Second)
	defDur(&c.retryMin, 2*time.Second)
	defDur(&c.reannounce, 15*time.Minute)
	if c.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Log = logrus.NewEntry(l)
	}
}

// Stats is a snapshot of a node's state and counters.
type Stats struct {
	ExternalIP         netip.Addr // where enough other nodes agree to see us (BEP 42), if they do
	GoodNodes, Nodes   int        // in the IPv4 table: good ones and all
	GoodNodes6, Nodes6 int        // in the IPv6 table
	Torrents, Peers    int        // in the peer store
	Lookups, Pending   int        // lookups running, our queries in flight

	QueriesIn   uint64 // queries answered
	QueriesOut  uint64 // queries sent
	RepliesIn   uint64 // answers to our queries
	Timeouts    uint64 // our queries that went unanswered
	Unsolicited uint64 // responses matching no query of ours, dropped
	Malformed   uint64 // packets that did not decode or were too big, dropped
	RateLimited uint64 // queries dropped by the per-IP or global limits
	QueueFull   uint64 // packets dropped because the loop was behind
}

// Node is a DHT node. Its methods may be called from any goroutine.
type Node struct {
	id       nodeID
	conn     net.PacketConn
	ownConn  bool
	cfg      Config
	log      *logrus.Entry
	v4, v6   bool       // address families the socket can reach
	external netip.Addr // our external IP at start (Config.ExternalIP or the state file's)

	// The loop's vocabulary: everything the loop takes, in loop.go's select.
	queries  chan packet
	replies  chan packet
	findC    chan findRequest
	cancelC  chan *peerBox
	addNodeC chan netip.AddrPort
	statsC   chan chan Stats
	seedC    chan []netip.AddrPort

	ingress ingressCounters // written by the reader, read by the loop for Stats

	closing     chan struct{}
	done        chan struct{} // closed when the loop has saved the state and returned
	stopResolve context.CancelFunc
	wg          sync.WaitGroup // reader and resolver
	closeOnce   sync.Once
	saveErr     error // set by the loop before done is closed
	closeErr    error
}

type ingressCounters struct {
	malformed, rateLimited, queueFull atomic.Uint64
}

// New starts a node on cfg.Conn or a socket bound to cfg.Addr.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	n := &Node{
		cfg:      cfg,
		log:      cfg.Log,
		queries:  make(chan packet, 256),
		replies:  make(chan packet, 256),
		findC:    make(chan findRequest),
		cancelC:  make(chan *peerBox),
		addNodeC: make(chan netip.AddrPort, 64),
		statsC:   make(chan chan Stats),
		seedC:    make(chan []netip.AddrPort, 1),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	n.conn = cfg.Conn
	if n.conn == nil {
		c, err := net.ListenPacket("udp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("dht: listen on %s: %w", cfg.Addr, err)
		}
		n.conn, n.ownConn = c, true
	}
	n.v4, n.v6 = families(n.conn.LocalAddr())

	var saved savedState
	if cfg.StateFile != "" {
		var err error
		saved, err = loadState(cfg.StateFile)
		if err != nil && !errors.Is(err, errNoState) {
			n.log.WithError(err).Warn("dht: ignoring the state file")
			saved = savedState{}
		}
	}
	// Our external IP: as configured, else as other nodes told the last run (BEP 42).
	n.external = cfg.ExternalIP
	if !n.external.IsValid() {
		n.external = saved.ip
	}
	switch {
	case n.external.IsValid() && saved.hasID && isSecureID(saved.id, n.external):
		n.id = saved.id
	case n.external.IsValid():
		n.id = secureID(n.external)
	case saved.hasID:
		n.id = saved.id
	default:
		n.id = randomID()
	}
	n.log = n.log.WithField("dht", n.conn.LocalAddr().String())

	var seeds []netip.AddrPort
	for _, s := range saved.nodes {
		seeds = append(seeds, s.addr)
	}
	l := newLoop(n, seeds, time.Now())
	var ctx context.Context
	ctx, n.stopResolve = context.WithCancel(context.Background())
	n.wg.Add(2)
	go n.read(newIngress(&n.cfg))
	go n.resolve(ctx, cfg.Bootstrap)
	go l.run()
	return n, nil
}

// families says which address families a socket bound to a can reach: a wildcard IPv6 socket
// is dual-stack.
func families(a net.Addr) (v4, v6 bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return true, false
	}
	ip := ua.AddrPort().Addr()
	switch {
	case ip.Is4() || ip.Is4In6():
		return true, false
	case ip.IsUnspecified():
		return true, true
	default:
		return false, true
	}
}

// ID returns our node ID.
func (n *Node) ID() [20]byte { return n.id }

// Addr returns the address of the node's socket.
func (n *Node) Addr() net.Addr { return n.conn.LocalAddr() }

// AddNode pings addr and adds it to the routing table if it answers (the peer wire PORT
// message, BEP 5).
func (n *Node) AddNode(addr netip.AddrPort) {
	select {
	case n.addNodeC <- netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()):
	case <-n.closing:
	}
}

// Stats returns a snapshot of the node's state; the zero Stats after Close.
func (n *Node) Stats() Stats {
	c := make(chan Stats, 1)
	select {
	case n.statsC <- c:
	case <-n.done:
		return Stats{}
	}
	select {
	case s := <-c:
		return s
	case <-n.done:
		return Stats{}
	}
}

// Close saves the state file, stops every goroutine of the node and waits for them. A socket
// passed in Config.Conn is left open.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closing)
		n.stopResolve()
		<-n.done
		if n.ownConn {
			n.conn.Close()
		} else {
			n.conn.SetReadDeadline(time.Now())
		}
		n.wg.Wait()
		if !n.ownConn {
			n.conn.SetReadDeadline(time.Time{})
		}
		n.closeErr = n.saveErr
	})
	return n.closeErr
}
