// Package lsd finds peers on the local network by Local Service Discovery (BEP 14): it
// announces torrents to a multicast group (239.192.152.143:6771, and [ff15::efc0:988f]:6771
// where IPv6 works) and hears other clients announcing theirs.
//
// Who owns what: a Service owns its sockets, one per interface and address family. Each
// socket has a reader goroutine, which parses datagrams (outside bytes, so bounded and
// checked there) and hands announces to the loop, and a writer goroutine with its own
// queue, so the loop never waits on a socket. The loop goroutine alone owns the set of
// announced torrents with their timers (schedule), the per-source rate limit (limiter),
// the announces heard lately (recent) and, per FindPeers call, the peers already
// reported. FindPeers runs the caller's
// callback on the caller's own goroutine, never on the loop's, so a callback may call
// back into the Service. Any goroutine may call FindPeers and Close.
//
// The sockets use Linux socket options (SO_BINDTODEVICE, IP_MULTICAST_ALL), so the package
// builds on Linux only. Interfaces are looked up once, in New: one that comes up later is
// not used until the next Service.
package lsd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Default groups of BEP 14.
const (
	DefaultGroup4 = "239.192.152.143:6771"
	DefaultGroup6 = "[ff15::efc0:988f]:6771"
)

// Config says where a Service announces and listens.
type Config struct {
	Port uint16 // our BitTorrent listen port, announced when FindPeers is given port 0
	// Interfaces to join and send on; empty: every interface that is up, multicast-capable
	// and not loopback. Naming lo explicitly is allowed (tests).
	Interfaces []string
	Log        *logrus.Entry // nil: log nothing
	Group4     string        // default DefaultGroup4; tests may change the port to isolate
	Group6     string        // default DefaultGroup6; "off" for IPv4 only
}

// Rates of what we accept: a source may send a burst of sourceBurst announces, then one
// every sourceEvery (BEP 14 peers announce each torrent every 5 min, a few torrents a
// message). maxSources bounds the memory that takes.
const (
	sourceBurst = 10
	sourceEvery = 6 * time.Second
	maxSources  = 1024
	// foundQueue is how many batches of new peers wait for a slow FindPeers callback;
	// past that a peer is dropped and reported when heard again.
	foundQueue = 16
	// maxRecent bounds the (torrent, peer) announces remembered for FindPeers calls that
	// start later.
	maxRecent = 4096
)

// Service announces torrents and hears announces on the LAN. Make it with New; Close it.
type Service struct {
	log    *logrus.Entry
	cookie string
	port   uint16
	socks  []*sock

	subscribe   chan *sub
	unsubscribe chan *sub
	heard       chan heard
	closing     chan struct{}
	closeOnce   sync.Once
	wg          sync.WaitGroup
}

// sock is one socket: one interface, one group.
type sock struct {
	conn  *net.UDPConn
	ifi   string
	group netip.AddrPort
	out   chan []byte // the writer's queue
}

// sub is one FindPeers call. seen belongs to the loop; found is how the loop hands it
// new peers.
type sub struct {
	ih    [20]byte
	port  uint16
	found chan []netip.AddrPort
	seen  map[netip.AddrPort]bool
}

type heard struct {
	from netip.Addr
	msg  message
}

// New opens a socket per interface and group and starts the Service. It fails when no
// socket could be opened for IPv4; IPv6 is best effort.
func New(cfg Config) (*Service, error) {
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		log = logrus.NewEntry(l)
	}
	log = log.WithField("lsd", cfg.Port)
	g4, err := group(cfg.Group4, DefaultGroup4, true)
	if err != nil {
		return nil, err
	}
	var groups = []netip.AddrPort{g4}
	if cfg.Group6 != "off" {
		g6, err := group(cfg.Group6, DefaultGroup6, false)
		if err != nil {
			return nil, err
		}
		groups = append(groups, g6)
	}
	ifis, err := interfaces(cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	var cookie [8]byte
	rand.Read(cookie[:])
	s := &Service{
		log:         log,
		cookie:      hex.EncodeToString(cookie[:]),
		port:        cfg.Port,
		subscribe:   make(chan *sub),
		unsubscribe: make(chan *sub),
		heard:       make(chan heard),
		closing:     make(chan struct{}),
	}
	var errs []error
	have4 := false
	for _, ifi := range ifis {
		for _, g := range groups {
			conn, err := openSocket(&ifi, g)
			if err != nil {
				if g.Addr().Is4() {
					errs = append(errs, err)
				} else {
					log.WithError(err).Debug("LSD over IPv6 unavailable")
				}
				continue
			}
			have4 = have4 || g.Addr().Is4()
			s.socks = append(s.socks, &sock{conn: conn, ifi: ifi.Name, group: g, out: make(chan []byte, 8)})
		}
	}
	if !have4 {
		for _, k := range s.socks {
			k.conn.Close()
		}
		if len(errs) == 0 {
			return nil, errors.New("lsd: no multicast interface")
		}
		return nil, fmt.Errorf("lsd: %w", errors.Join(errs...))
	}
	for _, err := range errs {
		log.WithError(err).Info("LSD not on this interface")
	}
	for _, k := range s.socks {
		s.wg.Add(2)
		go s.read(k)
		go s.write(k)
	}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

func group(s, def string, want4 bool) (netip.AddrPort, error) {
	if s == "" {
		s = def
	}
	g, err := netip.ParseAddrPort(s)
	if err != nil || !g.Addr().IsMulticast() || g.Addr().Is4() != want4 {
		return netip.AddrPort{}, fmt.Errorf("lsd: bad multicast group %q", s)
	}
	return g, nil
}

// Close stops the Service and waits for its goroutines; FindPeers calls return.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		for _, k := range s.socks {
			k.conn.Close()
		}
	})
	s.wg.Wait()
	return nil
}

// FindPeers announces ih on the LAN now and every 5 minutes, with port as our BitTorrent
// port (0: Config.Port; if that is 0 too, it only listens), and reports the peers heard
// announcing ih to found, each address once, until ctx ends or the Service is closed.
// Peers heard in the 6 minutes before the call are reported at once. Calls for one
// info-hash share its announces, which BEP 14 allows at most once a minute. found runs on
// this goroutine; while it is slow, new peers may be dropped, to come again with their
// next announce.
func (s *Service) FindPeers(ctx context.Context, ih [20]byte, port uint16, found func([]netip.AddrPort)) {
	if port == 0 {
		port = s.port
	}
	sb := &sub{ih: ih, port: port, found: make(chan []netip.AddrPort, foundQueue)}
	select {
	case s.subscribe <- sb:
	case <-s.closing:
		return
	case <-ctx.Done():
		return
	}
	defer func() {
		select {
		case s.unsubscribe <- sb:
		case <-s.closing:
		}
	}()
	for {
		select {
		case peers := <-sb.found:
			found(peers)
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

// read hands the announces arriving on k to the loop until the socket is closed.
func (s *Service) read(k *sock) {
	defer s.wg.Done()
	// One byte more than a message may have, to tell a too long one.
	buf := make([]byte, maxMessage+1)
	for {
		n, from, err := k.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.WithError(err).WithField("interface", k.ifi).Debug("LSD read")
			continue
		}
		m, err := parseMessage(buf[:n])
		if err != nil {
			s.log.WithError(err).WithField("from", from).Trace("LSD datagram ignored")
			continue
		}
		if m.cookie == s.cookie {
			continue // our own, looped back
		}
		select {
		case s.heard <- heard{from: from.Addr().Unmap(), msg: m}:
		case <-s.closing:
			return
		}
	}
}

// write sends what the loop queued for k until the Service closes.
func (s *Service) write(k *sock) {
	defer s.wg.Done()
	dst := net.UDPAddrFromAddrPort(k.group)
	for {
		select {
		case b := <-k.out:
			if _, err := k.conn.WriteToUDP(b, dst); err != nil {
				s.log.WithError(err).WithField("interface", k.ifi).Debug("LSD send")
			}
		case <-s.closing:
			return
		}
	}
}
