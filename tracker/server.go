package tracker

// The embedded tracker server: an in-memory tracker that speaks HTTP (BEP 3, BEP 23) and
// UDP (BEP 15) on the same port number.
//
// Ownership: Server.mu owns the swarm map (every torrent's peers and counts); HTTP handlers
// and the UDP goroutine take it for the length of one announce or scrape. The UDP goroutine
// alone owns the table of issued connection ids. The sweeper goroutine only calls the
// mu-guarded sweep. Serve starts all three goroutines and waits for them before it returns.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Server defaults and limits.
const (
	ServerDefaultInterval = 30 * time.Minute
	ServerDefaultNumWant  = 50
	ServerMaxNumWant      = 200
	// BEP 15: a connection id is valid for two minutes after the tracker issued it.
	serverUDPConnIDTTL = 2 * time.Minute
)

// ServerConfig tunes a Server. The zero value is an open tracker with a 30-minute interval.
type ServerConfig struct {
	// Interval is the re-announce interval told to clients.
	Interval time.Duration
	// MinInterval is the minimum re-announce interval; default Interval/2.
	MinInterval time.Duration
	// PeerTTL is how long a peer stays in a swarm after its last announce; default
	// 2*Interval + 1 minute, so one lost re-announce does not drop a peer.
	PeerTTL time.Duration
	// Allow, when set, restricts the tracker to the info-hashes it accepts (private swarms).
	// It is called without the server's lock held.
	Allow func(infoHash [20]byte) bool
	// Now is the clock for expiry of peers and UDP connection ids; default time.Now. Tests
	// drive it instead of sleeping.
	Now func() time.Time
}

// Server is an in-memory BitTorrent tracker. Create it with NewServer, run it with Serve.
type Server struct {
	cfg ServerConfig
	log *logrus.Entry

	mu       sync.Mutex
	torrents map[[20]byte]*srvTorrent

	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	startMu   sync.Mutex
	started   bool
	done      chan struct{} // closed when Serve returns
}

// NewServer returns a tracker with cfg's defaults filled in; a nil log discards. It serves
// nothing until Serve.
func NewServer(cfg ServerConfig, log *logrus.Entry) *Server {
	if cfg.Interval <= 0 {
		cfg.Interval = ServerDefaultInterval
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = cfg.Interval / 2
	}
	if cfg.PeerTTL <= 0 {
		cfg.PeerTTL = 2*cfg.Interval + time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	return &Server{
		cfg:      cfg,
		log:      log,
		torrents: make(map[[20]byte]*srvTorrent),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// ListenServer binds TCP (for HTTP) and UDP on the same port of addr's host. With port 0
// the kernel picks the TCP port and UDP is bound to the same number, retrying with another
// TCP port when that UDP port is taken.
func ListenServer(addr string) (net.Listener, net.PacketConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("tracker listen %q: %w", addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = 20
	}
	var lastErr error
	for range attempts {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("tracker listen tcp %s: %w", addr, err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("tracker listen udp on the tcp port of %s: %w", addr, lastErr)
}

// Serve answers HTTP requests on httpLn and UDP packets on udpConn (either may be nil)
// until ctx is done or Close is called, then closes both and returns. It returns nil on
// such a stop, or the error that made a listener fail. Serve may be called once.
func (s *Server) Serve(ctx context.Context, httpLn net.Listener, udpConn net.PacketConn) error {
	s.startMu.Lock()
	if s.started {
		s.startMu.Unlock()
		return errors.New("tracker serve: already serving")
	}
	s.started = true
	s.startMu.Unlock()
	defer close(s.done)

	stop := make(chan struct{})
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	hs := &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(srvLogWriter{s.log}, "", 0),
	}
	if httpLn != nil {
		s.log.WithField("addr", httpLn.Addr().String()).Debug("tracker serving http")
		wg.Go(func() {
			if err := hs.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("tracker serve http: %w", err)
			}
		})
	}
	if udpConn != nil {
		s.log.WithField("addr", udpConn.LocalAddr().String()).Debug("tracker serving udp")
		wg.Go(func() {
			if err := s.serveUDP(udpConn, stop); err != nil {
				errc <- fmt.Errorf("tracker serve udp: %w", err)
			}
		})
	}
	wg.Go(func() { s.runSweeper(stop) })

	var err error
	select {
	case <-ctx.Done():
	case <-s.closing:
	case err = <-errc:
	}
	close(stop)
	// Close rather than Shutdown: announces are short and clients retry, so waiting for
	// idle keep-alive connections would only delay the stop.
	hs.Close()
	if udpConn != nil {
		udpConn.Close()
	}
	wg.Wait()
	return err
}

// Close stops Serve and waits for it to return. It is safe to call more than once and
// before or without Serve.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.startMu.Lock()
	started := s.started
	s.startMu.Unlock()
	if started {
		<-s.done
	}
	return nil
}

// Stats returns the counts for one torrent (zeros when the tracker does not know it).
func (s *Server) Stats(infoHash [20]byte) ScrapeStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scrapeLocked(infoHash, s.cfg.Now())
}

// runSweeper drops expired peers now and then so that swarms nobody asks about any more
// do not hold memory; announces and scrapes also expire peers of their own torrent.
func (s *Server) runSweeper(stop <-chan struct{}) {
	every := max(min(s.cfg.Interval, time.Minute), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.sweep(s.cfg.Now())
		}
	}
}

// srvLogWriter sends net/http's internal error log to our entry at debug level: these are
// client misbehaviours (bad TLS handshakes, malformed requests), not our failures.
type srvLogWriter struct{ log *logrus.Entry }

func (w srvLogWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimRight(string(p), "\r\n"))
	return len(p), nil
}

// srvPeerAddr decides which address to announce for a peer. The connection's source is
// used unless the client asked for another address (HTTP `ip`, UDP IP field) and either
// that address or the source is loopback, private or link-local. So local test swarms and
// LAN peers behind one NAT can name themselves, while a public client cannot point the
// swarm at a third party's public address (the classic tracker-driven DDoS).
func srvPeerAddr(src, claimed netip.Addr) netip.Addr {
	src = src.Unmap()
	if !claimed.IsValid() || claimed.IsUnspecified() {
		return src
	}
	claimed = claimed.Unmap()
	if srvIsLocal(claimed) || srvIsLocal(src) {
		return claimed
	}
	return src
}

func srvIsLocal(a netip.Addr) bool {
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast()
}
