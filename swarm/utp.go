package swarm

// Peer connections over uTP (BEP 29) beside TCP: accepting on the client's uTP socket and
// the dial policy. A dial tries the transport that last worked for the address first (TCP
// for an address never reached), and the other one utpHeadStart later if the first has not
// completed the BitTorrent handshake by then, or at once when it failed; the first to
// complete its handshake is kept, the other is cancelled or closed. A peer that drops our
// MSE handshake over a transport gets a plaintext try over that transport at once (under
// EncryptionPrefer), racing the tries already under way: the transport works, so the
// plaintext try is not held back for the other transport, which a TCP-only peer never
// answers (that wait was secondTryTimeout).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/swarm/mse"
	"torrentfs/swarm/wire"
)

// utpHeadStart is how long the preferred transport runs alone: happy eyeballs' 250 ms
// (RFC 8305's connection attempt delay). A qBittorrent seeder just started left our TCP
// SYN unanswered while its uTP answered at once; with 500 ms here a first read waited
// half a second for it.
const utpHeadStart = 250 * time.Millisecond

// secondTryTimeout bounds the dial over the transport an address never answered on: a
// closed UDP port says nothing, so a uTP dial to a TCP-only peer would wait out every SYN.
const secondTryTimeout = 5 * time.Second

// maxTransports bounds the memory of which transport worked per address; past it, it
// starts over.
const maxTransports = 4096

type transport uint8

const (
	overTCP transport = iota
	overUTP
)

func (t transport) String() string {
	if t == overUTP {
		return "utp"
	}
	return "tcp"
}

// transports remembers, per address, the transport its last connection completed over.
type transports struct {
	mu sync.Mutex
	m  map[netip.AddrPort]transport
}

func (p *transports) get(a netip.AddrPort) (transport, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.m[a]
	return t, ok
}

func (p *transports) set(a netip.AddrPort, t transport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxTransports {
		p.m = make(map[netip.AddrPort]transport)
	}
	p.m[a] = t
}

// startUTP starts accepting on the uTP socket, when there is one.
func (c *Client) startUTP() {
	s := c.cfg.UTP
	if s == nil {
		return
	}
	if c.ln == nil {
		ua, _ := s.Addr().(*net.UDPAddr)
		if ip, ok := netip.AddrFromSlice(ua.IP); ok && !ip.Unmap().IsUnspecified() {
			ip = ip.Unmap()
			if !c.cfg.AnnounceIP.IsValid() {
				c.cfg.AnnounceIP = ip
			}
			c.bound = ip
		}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := s.Accept()
			if err != nil {
				return // the socket is closed: Accept has no other error
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.handleIncoming(conn)
			}()
		}
	}()
}

// connect opens a connection to addr over tr.
func (c *Client) connect(ctx context.Context, tr transport, addr netip.AddrPort) (net.Conn, error) {
	if tr == overUTP {
		return c.cfg.UTP.DialContext(ctx, addr)
	}
	d := net.Dialer{}
	if c.cfg.DialAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: c.cfg.DialAddr.AsSlice()}
	}
	return d.DialContext(ctx, "tcp", addr.String())
}

// dialOnce connects to a peer and performs the handshake for torrent ih over TCP or uTP,
// as the policy above says, inside an MSE handshake offering provide unless it is 0. With
// fallback, a try whose MSE handshake the peer drops is followed at once by a plaintext try
// over the same transport: the transport works, the peer wants plaintext, and waiting for
// the other transport's try (a TCP-only peer never answers uTP) would cost secondTryTimeout.
// The tries already under way go on; the first handshake wins. plain tells whether the
// winner is such a plaintext fallback.
func (c *Client) dialOnce(ctx context.Context, addr netip.AddrPort, hs wire.Handshake, v2 [20]byte, provide mse.Method, fallback bool) (conn net.Conn, phs wire.Handshake, plain bool, err error) {
	// Encrypted tries of a hybrid name its v2 hash first (see dial); v1Retry tells whether
	// the encrypted try naming hs's own hash is still to come after a refusal.
	encHS, v1Retry := hs, false
	if v2 != ([20]byte{}) && provide != 0 {
		encHS.InfoHash = v2
		encHS.Reserved.SetV2(false)
		v1Retry = true
	}
	first, known, haveSecond := overTCP, true, true
	switch {
	case c.cfg.UTP == nil:
		haveSecond = false
	case c.cfg.NoTCP:
		first, haveSecond = overUTP, false
	default:
		first, known = c.transport.get(addr)
	}
	second := overUTP
	if first == overUTP {
		second = overTCP
	}
	outer := ctx // the caller's: ctx is cancelled once a try wins
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn    net.Conn
		hs      wire.Handshake
		err     error
		tr      transport
		provide mse.Method
		refused bool // the peer dropped our MSE handshake
		alt     bool // the try named the v2 hash of a hybrid
	}
	results := make(chan result, 4) // at most: both transports, one v1 retry, one plaintext fallback
	started, done := 0, 0
	try := func(tr transport, provide mse.Method, timeout time.Duration) {
		started++
		ths, alt := hs, false
		if provide != 0 && v1Retry {
			ths, alt = encHS, true
		}
		go func() {
			tctx, tcancel := ctx, context.CancelFunc(func() {})
			if timeout > 0 {
				tctx, tcancel = context.WithTimeout(ctx, timeout)
			}
			defer tcancel()
			conn, phs, err := c.dialVia(tctx, tr, addr, ths, provide)
			// A timeout (ours, or a cancel, which sets a past deadline) is no refusal.
			var ne net.Error
			refused := errors.As(err, new(errMSE)) && !(errors.As(err, &ne) && ne.Timeout()) && tctx.Err() == nil
			results <- result{conn, phs, err, tr, provide, refused, alt}
		}()
	}
	secondStarted := !haveSecond
	startSecond := func() {
		if secondStarted {
			return
		}
		secondStarted = true
		var timeout time.Duration
		if !known {
			timeout = secondTryTimeout
		}
		try(second, provide, timeout)
	}
	plainStarted := !fallback || provide == 0
	try(first, provide, 0)
	var won *result
	var errs []error
	head := time.NewTimer(utpHeadStart)
	defer head.Stop()
	for done < started {
		select {
		case <-head.C:
			if won == nil && ctx.Err() == nil {
				startSecond()
			}
		case r := <-results:
			done++
			switch {
			case r.err == nil && won == nil:
				won = &r
				cancel()
			case r.err == nil:
				r.conn.Close()
			case won != nil || ctx.Err() != nil:
				// Cancelled because another try won or the caller gave up.
			default:
				what := r.tr.String()
				if r.provide == 0 && provide != 0 {
					what += " in plaintext"
				}
				errs = append(errs, fmt.Errorf("%s: %w", what, r.err))
				c.log.WithFields(logrus.Fields{"peer": addr, "transport": what}).WithError(r.err).Debug("dial try failed")
				if r.refused && r.alt && v1Retry {
					// The peer does not know the v2 hash: encrypted again, naming the v1 one.
					v1Retry = false
					try(r.tr, provide, 0)
				} else if !plainStarted && r.refused {
					plainStarted = true
					try(r.tr, 0, 0)
				} else {
					startSecond()
				}
			}
		}
	}
	if won == nil {
		if len(errs) == 0 {
			// Every try ended because the caller gave up: errors.Join of nothing would be
			// nil, a nil connection with no error.
			errs = append(errs, fmt.Errorf("dial %s: %w", addr, cmp.Or(ctx.Err(), context.Canceled)))
		}
		return nil, wire.Handshake{}, false, errors.Join(errs...)
	}
	if haveSecond {
		c.transport.set(addr, won.tr)
	}
	if v2 != ([20]byte{}) && won.provide != 0 && !won.alt && won.hs.Reserved.V2() && !c.noV2.has(addr) {
		// The v2-named try was dropped (only then do encrypted tries name the v1 hash), yet
		// the peer's answer has the v2 bit.
		conn, phs, err := c.retryV2(outer, won.tr, addr, encHS, hs, provide, won.conn)
		return conn, phs, false, err
	}
	return won.conn, won.hs, won.provide == 0 && provide != 0, nil
}

// v2RetryPause is how long retryV2 waits between closing the v1 connection and dialing
// again: long enough for the peer to see the close (a FIN arrives before a new dial's MSE
// request does, and libtorrent handles it at once unless loaded).
const v2RetryPause = 100 * time.Millisecond

// retryV2 follows an encrypted dial of a hybrid that the peer dropped when it named the v2
// hash and answered when it named the v1 hash, with the v2 bit set: the peer knows the v2
// hash, so the drop had another cause. libtorrent keeps one connection per IP and drops a
// new one while it still holds the last, as when ours closed a moment before and it has not
// yet seen that. Kept, the v1 connection would stay v1 for its life (libtorrent upgrades an
// encrypted connection only when it names the v2 hash), without hash requests: the v1
// connection v1conn is closed and, after a pause, the v2 hash named again. A peer that
// drops that too is remembered as one that refuses it, and dialed naming the v1 hash.
func (c *Client) retryV2(ctx context.Context, tr transport, addr netip.AddrPort, v2hs, v1hs wire.Handshake, provide mse.Method, v1conn net.Conn) (net.Conn, wire.Handshake, error) {
	v1conn.Close()
	pause := time.NewTimer(v2RetryPause)
	defer pause.Stop()
	select {
	case <-pause.C:
	case <-ctx.Done():
		return nil, wire.Handshake{}, fmt.Errorf("dial %s: %w", addr, ctx.Err())
	}
	log := c.log.WithFields(logrus.Fields{"peer": addr, "transport": tr.String()})
	conn, phs, err := c.dialVia(ctx, tr, addr, v2hs, provide)
	if err == nil {
		log.Debug("the peer dropped a dial naming the v2 hash, then took one; the first drop was not about the hash")
		return conn, phs, nil
	}
	c.noV2.add(addr)
	log.WithError(err).Debug("the peer knows the v2 hash but drops encrypted dials naming it; it is dialed naming the v1 hash")
	return c.dialVia(ctx, tr, addr, v1hs, provide)
}
