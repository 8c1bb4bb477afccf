package swarm

// Peer connections over uTP (BEP 29) beside TCP: accepting on the client's uTP socket and
// the dial policy. A dial tries the transport that last worked for the address first (TCP
// for an address never reached), and the other one utpHeadStart later if the first has not
// completed the BitTorrent handshake by then, or at once when it failed; the first to
// complete its handshake is kept, the other is cancelled or closed.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"torrentfs/swarm/mse"
	"torrentfs/swarm/wire"
)

// utpHeadStart is how long the preferred transport runs alone.
const utpHeadStart = 500 * time.Millisecond

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
// as the policy above says.
func (c *Client) dialOnce(ctx context.Context, addr netip.AddrPort, hs wire.Handshake, provide mse.Method) (net.Conn, wire.Handshake, error) {
	switch {
	case c.cfg.UTP == nil:
		return c.dialVia(ctx, overTCP, addr, hs, provide)
	case c.cfg.NoTCP:
		return c.dialVia(ctx, overUTP, addr, hs, provide)
	}
	first, known := c.transport.get(addr)
	second := overUTP
	if first == overUTP {
		second = overTCP
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn net.Conn
		hs   wire.Handshake
		err  error
		tr   transport
	}
	results := make(chan result, 2)
	try := func(ctx context.Context, tr transport) {
		conn, phs, err := c.dialVia(ctx, tr, addr, hs, provide)
		results <- result{conn, phs, err, tr}
	}
	go try(ctx, first)
	var won *result
	var errs []error
	started, done := 1, 0
	head := time.NewTimer(utpHeadStart)
	defer head.Stop()
	startSecond := func() {
		started++
		sctx, scancel := ctx, context.CancelFunc(func() {})
		if !known {
			sctx, scancel = context.WithTimeout(ctx, secondTryTimeout)
		}
		go func() {
			defer scancel()
			try(sctx, second)
		}()
	}
	for done < started {
		select {
		case <-head.C:
			if won == nil && started == 1 {
				startSecond()
			}
		case r := <-results:
			done++
			switch {
			case r.err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", r.tr, r.err))
				if won == nil && started == 1 && ctx.Err() == nil {
					startSecond()
				}
			case won == nil:
				won = &r
				cancel()
			default:
				r.conn.Close()
			}
		}
	}
	if won == nil {
		return nil, wire.Handshake{}, errors.Join(errs...)
	}
	c.transport.set(addr, won.tr)
	return won.conn, won.hs, nil
}
