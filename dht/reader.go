package dht

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// maxPacket is the largest datagram we accept; KRPC messages are far smaller.
const maxPacket = 2048

// packet is a decoded message and where it came from.
type packet struct {
	m    msg
	from netip.AddrPort
}

// ingress is the reader's admission control: per-IP and global limits on queries, and a per-IP
// limit on responses, applied before anything reaches the loop so a flood costs the loop
// nothing. Owned by the reader goroutine.
type ingress struct {
	cfg        *Config
	queryPerIP *ipLimiter
	queryAll   tokenBucket
	replyPerIP *ipLimiter
}

func newIngress(cfg *Config) *ingress {
	const maxSources = 4096
	return &ingress{
		cfg:        cfg,
		queryPerIP: newIPLimiter(cfg.QueriesPerSecondPerIP, 2*cfg.QueriesPerSecondPerIP, maxSources),
		// A node answers at most what we ask it; our own outgoing rate bounds that.
		replyPerIP: newIPLimiter(cfg.OutgoingPerSecond, 2*cfg.OutgoingPerSecond, maxSources),
	}
}

func (g *ingress) allow(p *packet, now time.Time) bool {
	ip := p.from.Addr()
	if p.m.Y != "q" {
		return g.replyPerIP.allow(ip, now)
	}
	return g.queryPerIP.allow(ip, now) && g.queryAll.take(now, g.cfg.QueriesPerSecond, 2*g.cfg.QueriesPerSecond)
}

// read is the reader goroutine: it reads datagrams, decodes them, applies the ingress limits
// and hands queries and responses to the loop on separate channels, so a flood of queries
// cannot crowd out the answers our lookups wait for. It never blocks on the loop: when a
// channel is full the packet is dropped.
func (n *Node) read(g *ingress) {
	defer n.wg.Done()
	buf := make([]byte, maxPacket+1)
	for {
		nr, addr, err := n.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-n.closing:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. ICMP errors surfacing on the socket): go on, without spinning.
			n.log.WithError(err).Debug("dht: read")
			select {
			case <-n.closing:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok || nr > maxPacket {
			n.ingress.malformed.Add(1)
			continue
		}
		from := ua.AddrPort()
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if !usableNodeAddr(from) {
			n.ingress.malformed.Add(1)
			continue
		}
		m, err := decodeMsg(buf[:nr])
		if err != nil {
			n.ingress.malformed.Add(1)
			n.log.WithError(err).WithField("from", from).Debug("dht: drop packet")
			continue
		}
		p := packet{m: m, from: from}
		if !g.allow(&p, time.Now()) {
			n.ingress.rateLimited.Add(1)
			continue
		}
		to := n.replies
		if m.Y == "q" {
			to = n.queries
		}
		select {
		case to <- p:
		default:
			n.ingress.queueFull.Add(1)
		}
	}
}

// resolve turns the bootstrap list into addresses, off the loop since DNS may take a while,
// and hands them to the loop once (an empty list included).
func (n *Node) resolve(ctx context.Context, hosts []string) {
	defer n.wg.Done()
	var out []netip.AddrPort
	var failed []string
	var lastErr error
	for _, h := range hosts {
		if ap, err := netip.ParseAddrPort(h); err == nil {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			continue
		}
		host, portStr, err := net.SplitHostPort(h)
		if err != nil {
			n.log.WithError(err).Warnf("dht: bootstrap node %q", h)
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			n.log.Warnf("dht: bootstrap node %q: bad port", h)
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.WithError(err).Debugf("dht: resolve bootstrap node %q", h)
			failed = append(failed, host)
			lastErr = err
			continue
		}
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		}
	}
	if len(failed) > 0 {
		// One line, not one per router: without DNS they all fail alike.
		log := n.log.WithError(lastErr)
		if len(out) == 0 {
			log.Warnf("dht: no bootstrap node could be resolved (%s); the DHT has only its saved table and the nodes peers tell it of", strings.Join(failed, ", "))
		} else {
			log.Infof("dht: bootstrap nodes not resolved: %s", strings.Join(failed, ", "))
		}
	}
	// Sent even when empty: the loop holds lookups that have no node to start from until
	// it knows the bootstrap list is all there will be.
	select {
	case n.seedC <- out:
	case <-ctx.Done():
	}
}
