package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/swarm/mse"
	"torrentfs/swarm/wire"
	"torrentfs/utp"
)

// handshakeTimeout bounds the whole BitTorrent handshake of a new connection.
const handshakeTimeout = 20 * time.Second

// ClientConfig configures a Client.
type ClientConfig struct {
	// ListenAddr is the TCP address peers connect to, e.g. "127.0.0.1:0" or ":6881". Empty
	// means do not listen (download only by dialing out).
	ListenAddr string
	// AnnounceIP, when set, is the IP trackers are told (else they take the source address).
	AnnounceIP netip.Addr
	// DialAddr, when set, is the local address outgoing connections bind to.
	DialAddr netip.Addr
	// UploadLimit and DownloadLimit are bytes per second shared by all torrents; 0 = none.
	UploadLimit   int64
	DownloadLimit int64
	// Sources find peers besides the trackers (the DHT, local service discovery). Every
	// torrent that is not private asks each of them for as long as it runs, and so does the
	// metadata fetch of a magnet link.
	Sources []PeerSource
	// DHTPort, when set, is the UDP port of our DHT node: we set the DHT bit in handshakes
	// and send it to peers that set theirs (the PORT message, BEP 5).
	DHTPort uint16
	// OnDHTPort receives the DHT node of a peer that sent us its port (BEP 5: ping it and
	// add it to the routing table). It must not block.
	OnDHTPort func(netip.AddrPort)
	// Encryption is the MSE/PE policy for peer connections (default EncryptionPrefer).
	Encryption Encryption
	// UTP, when set, is a uTP socket (BEP 29) the client accepts peers on and dials them
	// through besides TCP (utp.go); the client closes it. It should be on the UDP port of
	// the TCP port's number: peers learn one port for both.
	UTP *utp.Socket
	// NoTCP turns TCP off: no listening, no dialing; peers come and go over UTP only.
	NoTCP bool
	// MaxConns bounds the peer connections of all torrents together, dials in flight
	// included (default 200); each torrent's MaxPeers bounds its own share.
	MaxConns int
	Log      *logrus.Entry
}

// PeerSource is a way to find peers of a torrent besides its trackers. Find reports peers
// of ih to found as it learns them, announcing that we serve ih on port when port is not 0,
// until ctx ends; found may block while the torrent is busy.
type PeerSource struct {
	Name string
	Find func(ctx context.Context, ih [20]byte, port uint16, found func([]netip.AddrPort))
}

// Client is one BitTorrent node: a peer id, a listening socket and its torrents.
type Client struct {
	cfg       ClientConfig
	peerID    [20]byte
	log       *logrus.Entry
	ln        net.Listener
	bound     netip.Addr // the listener's IP when it is a specific one
	upLimit   *rateLimiter
	downLimit *rateLimiter
	webOnce   sync.Once
	web       *http.Client // the web seeds' (webseed.go), made on first use

	mu         sync.Mutex
	torrents   map[[20]byte]*Torrent
	closed     bool
	sources    []PeerSource         // ClientConfig.Sources, then AddSource
	dhtPort    uint16               // ClientConfig.DHTPort, or SetDHT's
	onDHTPort  func(netip.AddrPort) // ClientConfig.OnDHTPort, or SetDHT's
	externalIP netip.Addr           // SetExternalIP's
	plain      addrSet              // peers that want plaintext (encryption.go)
	noV2       addrSet              // peers that drop v2-named MSE though they know v2 (retryV2)
	transport  transports           // what each address last connected over (utp.go)

	conns atomic.Int32 // connections and dials in flight, of all torrents (takeConn)

	wg      sync.WaitGroup
	closing chan struct{}
}

// takeConn reserves room for one connection under ClientConfig.MaxConns; false when there
// is none. releaseConn gives it back.
func (c *Client) takeConn() bool {
	for {
		n := c.conns.Load()
		if int(n) >= c.cfg.MaxConns {
			return false
		}
		if c.conns.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (c *Client) releaseConn() { c.conns.Add(-1) }

// Conns is the number of peer connections of all torrents, dials in flight included.
func (c *Client) Conns() int { return int(c.conns.Load()) }

// NewClient starts a client, listening when cfg.ListenAddr is set.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		cfg.Log = logrus.NewEntry(l)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 200
	}
	c := &Client{
		cfg:       cfg,
		peerID:    wire.NewPeerID("-TF0001-"),
		log:       cfg.Log,
		upLimit:   newRateLimiter(cfg.UploadLimit),
		downLimit: newRateLimiter(cfg.DownloadLimit),
		torrents:  make(map[[20]byte]*Torrent),
		closing:   make(chan struct{}),
		sources:   cfg.Sources,
		dhtPort:   cfg.DHTPort,
		onDHTPort: cfg.OnDHTPort,
	}
	if cfg.ListenAddr != "" && !cfg.NoTCP {
		ln, err := net.Listen("tcp", cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("listen for peers on %s: %w", cfg.ListenAddr, err)
		}
		c.ln = ln
		// Listening on one specific address (a multi-homed host, a test's own loopback
		// address): peers and trackers must see that address, so dial and announce from it.
		if ip := ln.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap(); !ip.IsUnspecified() {
			if !c.cfg.DialAddr.IsValid() {
				c.cfg.DialAddr = ip
			}
			if !c.cfg.AnnounceIP.IsValid() {
				c.cfg.AnnounceIP = ip
			}
			c.bound = ip
		}
		c.wg.Add(1)
		go c.acceptLoop()
	}
	c.startUTP()
	return c, nil
}

// AddSource adds a way to find peers for the torrents added after it (a DHT node started
// once the listening port is known, on the same port number).
func (c *Client) AddSource(s PeerSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources = append(c.sources[:len(c.sources):len(c.sources)], s)
}

// SetDHT sets the DHT port sent to peers and the receiver of theirs (see ClientConfig) for
// the torrents added after it.
func (c *Client) SetDHT(port uint16, onPort func(netip.AddrPort)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dhtPort, c.onDHTPort = port, onPort
}

// SetExternalIP sets our address as the internet sees it (from port mapping): torrents
// added after it tell peers in the extension handshake (ipv4/ipv6, BEP 10).
func (c *Client) SetExternalIP(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.externalIP = ip.Unmap()
}

// discovery is what a new torrent or fetch takes from the client's peer sources and DHT
// settings.
type discovery struct {
	sources    []PeerSource
	dhtPort    uint16
	onDHTPort  func(netip.AddrPort)
	externalIP netip.Addr
}

func (c *Client) discovery() discovery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return discovery{sources: c.sources, dhtPort: c.dhtPort, onDHTPort: c.onDHTPort, externalIP: c.externalIP}
}

// PeerID is the id this client sends in handshakes.
func (c *Client) PeerID() [20]byte { return c.peerID }

// Port is the port peers can reach us on: TCP's, else uTP's (0 when not listening).
func (c *Client) Port() uint16 {
	if a := c.Addr(); a != nil {
		return netip.MustParseAddrPort(a.String()).Port()
	}
	return 0
}

// Addr is the listening address (TCP's, else the uTP socket's), or nil.
func (c *Client) Addr() net.Addr {
	switch {
	case c.ln != nil:
		return c.ln.Addr()
	case c.cfg.UTP != nil:
		return c.cfg.UTP.Addr()
	}
	return nil
}

// Close stops every torrent (announcing `stopped`) and the listener, and waits for them.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ts := make([]*Torrent, 0, len(c.torrents))
	for _, t := range c.torrents {
		ts = append(ts, t)
	}
	c.mu.Unlock()
	close(c.closing)
	if c.ln != nil {
		c.ln.Close()
	}
	var errs []error
	for _, t := range ts {
		errs = append(errs, t.Close())
	}
	if c.cfg.UTP != nil {
		c.cfg.UTP.Close()
	}
	c.wg.Wait()
	c.webOnce.Do(func() {}) // orders the read of c.web after its making
	if c.web != nil {
		c.web.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

func (c *Client) acceptLoop() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			select {
			case <-c.closing:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			c.log.WithError(err).Warn("accept failed")
			// Out of file descriptors and the like: back off instead of spinning.
			select {
			case <-time.After(time.Second):
			case <-c.closing:
				return
			}
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.handleIncoming(conn)
		}()
	}
}

// handleIncoming reads the peer's handshake, finds the torrent it wants and answers.
func (c *Client) handleIncoming(conn net.Conn) {
	conn = withQuickAck(conn)
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	raw := conn
	conn, method, skey, err := c.acceptEncryption(conn)
	if err != nil {
		c.log.WithField("peer", raw.RemoteAddr()).WithError(err).Debug("incoming connection refused")
		raw.Close()
		return
	}
	reserved, ih, err := wire.ReadHandshakeHeader(conn)
	if err != nil {
		c.log.WithField("peer", conn.RemoteAddr()).WithError(err).Debug("bad incoming handshake")
		conn.Close()
		return
	}
	c.mu.Lock()
	t := c.torrents[ih]
	c.mu.Unlock()
	if t == nil || method != 0 && ih != skey {
		conn.Close()
		return
	}
	ours := t.answerHandshake(ih, reserved)
	if err := wire.WriteHandshake(conn, ours); err != nil {
		conn.Close()
		return
	}
	id, err := wire.ReadPeerID(conn)
	if err != nil {
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	// The info-hash the connection speaks is the one we answered with (a v2 upgrade).
	t.addConn(conn, wire.Handshake{Reserved: reserved, InfoHash: ours.InfoHash, PeerID: id}, false)
}

// sameTorrent tells whether a and b are the two info-hashes of one hybrid torrent: a peer
// we offered the v2 switch to answers with the v2 one (BEP 52).
func (c *Client) sameTorrent(a, b [20]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.torrents[a]
	return t != nil && c.torrents[b] == t
}

// dialVia connects to a peer over tr and performs the handshake for torrent ih, inside an
// MSE handshake offering provide unless it is 0 (see dial, encryption.go, and dialOnce,
// utp.go).
func (c *Client) dialVia(ctx context.Context, tr transport, addr netip.AddrPort, hs wire.Handshake, provide mse.Method) (net.Conn, wire.Handshake, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn, err := c.connect(ctx, tr, addr)
	if err != nil {
		return nil, wire.Handshake{}, err
	}
	conn = withQuickAck(conn)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	raw := conn
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn, err = sendHandshake(conn, hs, provide)
	if err != nil {
		raw.Close()
		return nil, wire.Handshake{}, err
	}
	reserved, ih, err := wire.ReadHandshakeHeader(conn)
	if err != nil {
		conn.Close()
		return nil, wire.Handshake{}, fmt.Errorf("read handshake: %w", err)
	}
	if ih != hs.InfoHash && !c.sameTorrent(ih, hs.InfoHash) {
		conn.Close()
		return nil, wire.Handshake{}, errors.New("peer answered for another torrent")
	}
	id, err := wire.ReadPeerID(conn)
	if err != nil {
		conn.Close()
		return nil, wire.Handshake{}, fmt.Errorf("read peer id: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return conn, wire.Handshake{Reserved: reserved, InfoHash: ih, PeerID: id}, nil
}
