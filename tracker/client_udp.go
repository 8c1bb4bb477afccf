package tracker

// UDP tracker client (BEP 15).

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"
)

const (
	// udpConnIDLifetime is how long a client may reuse a connection id (BEP 15).
	udpConnIDLifetime = time.Minute
	// udpMaxRetransmits is the BEP's n: waits run 15·2^0 … 15·2^8 seconds.
	udpMaxRetransmits = 8
)

// UDPClient talks to one UDP tracker through one connected socket. All its state (socket,
// connection id) is owned by mu, which also serialises requests: BEP 15 has a client wait
// for each answer before the next request anyway.
type UDPClient struct {
	host string // host:port to dial

	// BaseTimeout is the first wait for an answer; the n-th retransmission waits
	// BaseTimeout·2^n. BEP 15 says 15 s; tests make it small.
	BaseTimeout time.Duration
	// MaxRetransmits is the largest n before giving up.
	MaxRetransmits int

	now func() time.Time // for connection-id expiry; tests drive it

	mu       sync.Mutex
	local    netip.Addr // the address to send from, when valid
	conn     *net.UDPConn
	ipv6     bool
	connID   uint64
	connTime time.Time // zero: no connection id
}

// NewUDPClient returns a client for udp://host:port[/...]. The socket is dialled on the first
// request.
func NewUDPClient(u *url.URL) (*UDPClient, error) {
	if u.Port() == "" {
		return nil, fmt.Errorf("tracker %s: UDP tracker URL has no port", u.Redacted())
	}
	return &UDPClient{
		host:           u.Host,
		BaseTimeout:    15 * time.Second,
		MaxRetransmits: udpMaxRetransmits,
		now:            time.Now,
	}, nil
}

// Close closes the socket.
func (c *UDPClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	c.connTime = time.Time{}
	return err
}

// Announce sends req (BEP 15 announce) and returns the tracker's answer.
func (c *UDPClient) Announce(ctx context.Context, req AnnounceRequest) (*AnnounceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	body, err := c.roundTrip(ctx, udpActionAnnounce, func(connID uint64, tid uint32) []byte {
		return udpAnnouncePacket(connID, tid, req)
	})
	if err != nil {
		return nil, fmt.Errorf("announce to udp://%s: %w", c.host, err)
	}
	resp, err := udpParseAnnounceBody(body, c.ipv6)
	if err != nil {
		return nil, fmt.Errorf("announce to udp://%s: %w", c.host, err)
	}
	return resp, nil
}

// Scrape asks for the counts of hashes, in packets of at most 74 hashes.
func (c *UDPClient) Scrape(ctx context.Context, hashes [][20]byte) (map[[20]byte]ScrapeStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[[20]byte]ScrapeStats, len(hashes))
	for len(hashes) > 0 {
		batch := hashes[:min(len(hashes), udpMaxScrape)]
		hashes = hashes[len(batch):]
		body, err := c.roundTrip(ctx, udpActionScrape, func(connID uint64, tid uint32) []byte {
			return udpScrapePacket(connID, tid, batch)
		})
		if err != nil {
			return nil, fmt.Errorf("scrape udp://%s: %w", c.host, err)
		}
		stats, err := udpParseScrapeBody(body, len(batch))
		if err != nil {
			return nil, fmt.Errorf("scrape udp://%s: %w", c.host, err)
		}
		for i, st := range stats {
			out[batch[i]] = st
		}
	}
	return out, nil
}

// ErrUDPNoAnswer is returned when a UDP tracker stayed silent through every retransmission.
var ErrUDPNoAnswer = errors.New("no answer from tracker")

// roundTrip gets a connection id if it has none fresh enough, sends the packet that build
// makes and returns the body of the matching answer. Retransmissions reuse the transaction
// id so a late answer to an earlier copy still counts. Called with mu held.
func (c *UDPClient) roundTrip(ctx context.Context, action uint32, build func(connID uint64, tid uint32) []byte) ([]byte, error) {
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	// A cancelled context must end a blocked read; the deadline is how a read is interrupted.
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, 64<<10)
	var connectTID, reqTID uint32
	for n := 0; n <= c.MaxRetransmits; n++ {
		wait := c.BaseTimeout << n
		if c.connTime.IsZero() || c.now().Sub(c.connTime) >= udpConnIDLifetime {
			c.connTime = time.Time{}
			if connectTID == 0 {
				connectTID = udpTransactionID()
			}
			body, err := c.exchange(ctx, buf, udpConnectPacket(connectTID), udpActionConnect, connectTID, wait)
			if errors.Is(err, errUDPTimeout) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("connect: %w", err)
			}
			id, err := udpParseConnectBody(body)
			if err != nil {
				return nil, fmt.Errorf("connect: %w", err)
			}
			c.connID, c.connTime = id, c.now()
			connectTID = 0
		}
		if reqTID == 0 {
			reqTID = udpTransactionID()
		}
		body, err := c.exchange(ctx, buf, build(c.connID, reqTID), action, reqTID, wait)
		if errors.Is(err, errUDPTimeout) {
			continue
		}
		if err != nil {
			// An error answer often means the tracker forgot our connection id; get a
			// new one next time rather than repeating a stale one.
			c.connTime = time.Time{}
			return nil, err
		}
		return body, nil
	}
	return nil, ErrUDPNoAnswer
}

// errUDPTimeout marks one wait that ended without a matching answer.
var errUDPTimeout = errors.New("udp wait timed out")

// exchange sends pkt and reads until an answer with transaction id tid arrives or wait
// passes. Answers with other transaction ids (late or forged) are ignored.
func (c *UDPClient) exchange(ctx context.Context, buf, pkt []byte, action, tid uint32, wait time.Duration) ([]byte, error) {
	if _, err := c.conn.Write(pkt); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	deadline := time.Now().Add(wait)
	if err := c.conn.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, errUDPTimeout
			}
			return nil, fmt.Errorf("receive: %w", err)
		}
		gotAction, gotTID, body, err := udpParseHeader(buf[:n])
		if err != nil || gotTID != tid {
			continue
		}
		switch gotAction {
		case action:
			return append([]byte(nil), body...), nil
		case udpActionError:
			return nil, fmt.Errorf("tracker error: %s", udpErrorMessage(body))
		}
		// Right transaction id, wrong action: a confused tracker; wait for a proper answer.
	}
}

// dial opens the socket on first use. Called with mu held.
func (c *UDPClient) dial(ctx context.Context) error {
	if c.conn != nil {
		return nil
	}
	var d net.Dialer
	if c.local.IsValid() {
		d.LocalAddr = &net.UDPAddr{IP: c.local.AsSlice()}
	}
	conn, err := d.DialContext(ctx, "udp", c.host)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	uc := conn.(*net.UDPConn)
	raddr := uc.RemoteAddr().(*net.UDPAddr)
	c.conn = uc
	c.ipv6 = raddr.IP.To4() == nil
	return nil
}

func udpTransactionID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	// Zero stands for "none yet" in roundTrip.
	return binary.BigEndian.Uint32(b[:]) | 1
}

func udpConnectPacket(tid uint32) []byte {
	b := make([]byte, udpHeaderLen)
	binary.BigEndian.PutUint64(b[0:], udpProtocolID)
	binary.BigEndian.PutUint32(b[8:], udpActionConnect)
	binary.BigEndian.PutUint32(b[12:], tid)
	return b
}

func udpAnnouncePacket(connID uint64, tid uint32, req AnnounceRequest) []byte {
	b := make([]byte, udpAnnounceLen)
	binary.BigEndian.PutUint64(b[0:], connID)
	binary.BigEndian.PutUint32(b[8:], udpActionAnnounce)
	binary.BigEndian.PutUint32(b[12:], tid)
	copy(b[16:36], req.InfoHash[:])
	copy(b[36:56], req.PeerID[:])
	binary.BigEndian.PutUint64(b[56:], uint64(max(req.Downloaded, 0)))
	binary.BigEndian.PutUint64(b[64:], uint64(max(req.Left, 0)))
	binary.BigEndian.PutUint64(b[72:], uint64(max(req.Uploaded, 0)))
	// BEP 15 numbers the events none, completed, started, stopped, as Event does.
	binary.BigEndian.PutUint32(b[80:], uint32(req.Event))
	if req.IP.Is4() {
		ip := req.IP.As4()
		copy(b[84:88], ip[:])
	}
	binary.BigEndian.PutUint32(b[88:], req.Key)
	numWant := int32(-1)
	if req.NumWant >= 0 {
		numWant = int32(min(req.NumWant, 1<<20))
	}
	binary.BigEndian.PutUint32(b[92:], uint32(numWant))
	binary.BigEndian.PutUint16(b[96:], req.Port)
	return b
}

func udpScrapePacket(connID uint64, tid uint32, hashes [][20]byte) []byte {
	b := make([]byte, udpHeaderLen, udpHeaderLen+20*len(hashes))
	binary.BigEndian.PutUint64(b[0:], connID)
	binary.BigEndian.PutUint32(b[8:], udpActionScrape)
	binary.BigEndian.PutUint32(b[12:], tid)
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

// udpParseHeader splits an answer into action, transaction id and body.
func udpParseHeader(b []byte) (action, tid uint32, body []byte, err error) {
	if len(b) < 8 {
		return 0, 0, nil, fmt.Errorf("UDP answer of %d bytes is too short", len(b))
	}
	return binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), b[8:], nil
}

func udpParseConnectBody(body []byte) (uint64, error) {
	if len(body) < 8 {
		return 0, fmt.Errorf("connect answer body of %d bytes is too short", len(body))
	}
	return binary.BigEndian.Uint64(body), nil
}

// udpParseAnnounceBody decodes interval, leechers, seeders and the peers, whose address
// size follows the socket's family (BEP 15).
func udpParseAnnounceBody(body []byte, ipv6 bool) (*AnnounceResponse, error) {
	if len(body) == 0 {
		// opentracker answers so for a torrent it does not serve.
		return nil, errors.New("empty announce answer (torrent not served by this tracker?)")
	}
	if len(body) < 12 {
		return nil, fmt.Errorf("announce answer body of %d bytes is too short", len(body))
	}
	resp := &AnnounceResponse{
		Interval:   udpSeconds(binary.BigEndian.Uint32(body)),
		Incomplete: udpCount(binary.BigEndian.Uint32(body[4:])),
		Complete:   udpCount(binary.BigEndian.Uint32(body[8:])),
	}
	addrLen := 4
	if ipv6 {
		addrLen = 16
	}
	peers, err := clientCompactPeers(body[12:], addrLen)
	if err != nil {
		return nil, fmt.Errorf("announce answer: %w", err)
	}
	resp.Peers = peers
	return resp, nil
}

// udpParseScrapeBody decodes n (seeders, completed, leechers) triples, in request order.
func udpParseScrapeBody(body []byte, n int) ([]ScrapeStats, error) {
	if len(body) < 12*n {
		return nil, fmt.Errorf("scrape answer has %d bytes for %d torrents", len(body), n)
	}
	out := make([]ScrapeStats, n)
	for i := range out {
		b := body[12*i:]
		out[i] = ScrapeStats{
			Complete:   udpCount(binary.BigEndian.Uint32(b)),
			Downloaded: udpCount(binary.BigEndian.Uint32(b[4:])),
			Incomplete: udpCount(binary.BigEndian.Uint32(b[8:])),
		}
	}
	return out, nil
}

// udpErrorMessage makes an error answer's text printable and short.
func udpErrorMessage(body []byte) string {
	if len(body) > 200 {
		body = body[:200]
	}
	q := strconv.Quote(string(body))
	return q[1 : len(q)-1]
}

func udpSeconds(n uint32) time.Duration {
	if n > 1<<31-1 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func udpCount(n uint32) int {
	if n > 1<<31-1 {
		return 0
	}
	return int(n)
}
