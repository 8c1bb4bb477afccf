package tracker

// UDP side of the embedded tracker (BEP 15). One goroutine reads packets and answers each
// in turn; it alone owns the table of connection ids it has issued.

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// The protocol's own constants are in udp_proto.go; these are the server's limits.
const (
	// Peers per reply that keep a reply inside a 1500-byte MTU.
	srvUDPMaxPeers4 = ServerMaxNumWant
	srvUDPMaxPeers6 = 80
	// srvUDPMaxConnIDs bounds the connection-id table against a flood of connects.
	srvUDPMaxConnIDs = 1 << 16
)

// errSrvUDPIgnore marks a packet too short to carry a transaction id: there is nobody to
// answer.
var errSrvUDPIgnore = errors.New("packet too short to answer")

// srvUDPRequest is one parsed request packet.
type srvUDPRequest struct {
	connID   uint64
	action   uint32
	txID     uint32
	announce AnnounceRequest // action announce; IP is the packet's IP field, if not zero
	hashes   [][20]byte      // action scrape, at most udpMaxScrape
}

// srvParseUDPRequest parses a request packet. Errors other than errSrvUDPIgnore come with
// the transaction id filled in, so the caller can answer with an error packet.
func srvParseUDPRequest(pkt []byte) (srvUDPRequest, error) {
	var req srvUDPRequest
	if len(pkt) < udpHeaderLen {
		return req, errSrvUDPIgnore
	}
	req.connID = binary.BigEndian.Uint64(pkt[0:])
	req.action = binary.BigEndian.Uint32(pkt[8:])
	req.txID = binary.BigEndian.Uint32(pkt[12:])
	switch req.action {
	case udpActionConnect:
		if req.connID != udpProtocolID {
			return req, errors.New("bad protocol id in connect")
		}
	case udpActionAnnounce:
		// Bytes past 98 are BEP 41 options; we need none of them.
		if len(pkt) < udpAnnounceLen {
			return req, fmt.Errorf("announce of %d bytes, want %d", len(pkt), udpAnnounceLen)
		}
		a := &req.announce
		copy(a.InfoHash[:], pkt[16:36])
		copy(a.PeerID[:], pkt[36:56])
		a.Downloaded = int64(binary.BigEndian.Uint64(pkt[56:]))
		a.Left = int64(binary.BigEndian.Uint64(pkt[64:]))
		a.Uploaded = int64(binary.BigEndian.Uint64(pkt[72:]))
		if a.Downloaded < 0 || a.Left < 0 || a.Uploaded < 0 {
			return req, errors.New("negative byte count")
		}
		switch ev := binary.BigEndian.Uint32(pkt[80:]); ev {
		case 0:
			a.Event = EventNone
		case 1:
			a.Event = EventCompleted
		case 2:
			a.Event = EventStarted
		case 3:
			a.Event = EventStopped
		default:
			return req, fmt.Errorf("invalid event %d", ev)
		}
		if ip := [4]byte(pkt[84:88]); ip != [4]byte{} {
			a.IP = netip.AddrFrom4(ip)
		}
		a.Key = binary.BigEndian.Uint32(pkt[88:])
		a.NumWant = int(int32(binary.BigEndian.Uint32(pkt[92:])))
		if a.NumWant < 0 {
			a.NumWant = -1
		}
		a.Port = binary.BigEndian.Uint16(pkt[96:])
		if a.Port == 0 {
			return req, errors.New("invalid port 0")
		}
		a.Compact = true
	case udpActionScrape:
		n := (len(pkt) - udpHeaderLen) / 20
		if n == 0 {
			return req, errors.New("scrape without info_hash")
		}
		n = min(n, udpMaxScrape)
		req.hashes = make([][20]byte, n)
		for i := range n {
			req.hashes[i] = [20]byte(pkt[udpHeaderLen+20*i:])
		}
	default:
		return req, fmt.Errorf("unknown action %d", req.action)
	}
	return req, nil
}

// srvUDPConns are the connection ids the tracker has issued. Owned by the UDP goroutine.
type srvUDPConns struct {
	ids       map[uint64]srvUDPConnID
	lastPurge time.Time
}

type srvUDPConnID struct {
	addr   netip.Addr
	issued time.Time
}

func newSrvUDPConns() *srvUDPConns {
	return &srvUDPConns{ids: make(map[uint64]srvUDPConnID)}
}

// issue returns a fresh random connection id for addr.
func (c *srvUDPConns) issue(addr netip.Addr, now time.Time) (uint64, error) {
	if now.Sub(c.lastPurge) > serverUDPConnIDTTL || len(c.ids) >= srvUDPMaxConnIDs {
		for id, e := range c.ids {
			if now.Sub(e.issued) > serverUDPConnIDTTL {
				delete(c.ids, id)
			}
		}
		c.lastPurge = now
	}
	if len(c.ids) >= srvUDPMaxConnIDs {
		return 0, errors.New("tracker busy, try again later")
	}
	var b [8]byte
	crand.Read(b[:])
	id := binary.BigEndian.Uint64(b[:])
	c.ids[id] = srvUDPConnID{addr: addr, issued: now}
	return id, nil
}

// valid reports whether id was issued to addr within the last two minutes. The address
// check is the point of connection ids: a spoofed source never saw the id.
func (c *srvUDPConns) valid(id uint64, addr netip.Addr, now time.Time) bool {
	e, ok := c.ids[id]
	return ok && e.addr == addr && now.Sub(e.issued) <= serverUDPConnIDTTL
}

// serveUDP reads and answers packets until pc is closed after stop is closed.
func (s *Server) serveUDP(pc net.PacketConn, stop <-chan struct{}) error {
	conns := newSrvUDPConns()
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-stop:
				return nil
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return fmt.Errorf("read: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		reply := s.handleUDP(buf[:n], src, conns)
		if reply == nil {
			continue
		}
		if _, err := pc.WriteTo(reply, from); err != nil {
			s.log.WithError(err).WithField("peer", src.String()).Debug("tracker udp reply")
		}
	}
}

// handleUDP answers one packet from src; nil means no answer.
func (s *Server) handleUDP(pkt []byte, src netip.AddrPort, conns *srvUDPConns) []byte {
	now := s.cfg.Now()
	req, err := srvParseUDPRequest(pkt)
	if errors.Is(err, errSrvUDPIgnore) {
		return nil
	}
	if err != nil {
		return srvUDPError(req.txID, err.Error())
	}
	reply := binary.BigEndian.AppendUint32(nil, req.action)
	reply = binary.BigEndian.AppendUint32(reply, req.txID)
	if req.action == udpActionConnect {
		id, err := conns.issue(src.Addr(), now)
		if err != nil {
			return srvUDPError(req.txID, err.Error())
		}
		return binary.BigEndian.AppendUint64(reply, id)
	}
	if !conns.valid(req.connID, src.Addr(), now) {
		return srvUDPError(req.txID, "unknown or expired connection id")
	}
	if req.action == udpActionScrape {
		stats := s.scrape(req.hashes)
		for _, ih := range req.hashes {
			st := stats[ih]
			reply = binary.BigEndian.AppendUint32(reply, uint32(st.Complete))
			reply = binary.BigEndian.AppendUint32(reply, uint32(st.Downloaded))
			reply = binary.BigEndian.AppendUint32(reply, uint32(st.Incomplete))
		}
		return reply
	}

	// Announce. The reply carries the request's address family only (BEP 15), and the
	// packet's IPv4 field means nothing to an IPv6 request.
	a := req.announce
	family, maxPeers := srvFamily4, srvUDPMaxPeers4
	claimed := a.IP
	if src.Addr().Is6() {
		family, maxPeers, claimed = srvFamily6, srvUDPMaxPeers6, netip.Addr{}
	}
	if a.NumWant < 0 {
		a.NumWant = ServerDefaultNumWant
	}
	a.NumWant = min(a.NumWant, maxPeers)
	addr := netip.AddrPortFrom(srvPeerAddr(src.Addr(), claimed), a.Port)
	resp, err := s.announce(a, addr, family)
	if err != nil {
		return srvUDPError(req.txID, err.Error())
	}
	s.log.WithFields(map[string]any{
		"info_hash": hex.EncodeToString(a.InfoHash[:]), "peer": addr.String(),
		"event": a.Event.String(), "left": a.Left, "returned": len(resp.Peers),
	}).Debug("tracker udp announce")
	reply = binary.BigEndian.AppendUint32(reply, uint32(srvSeconds(resp.Interval)))
	reply = binary.BigEndian.AppendUint32(reply, uint32(resp.Incomplete))
	reply = binary.BigEndian.AppendUint32(reply, uint32(resp.Complete))
	for _, p := range resp.Peers {
		reply = append(reply, p.Addr.Addr().AsSlice()...)
		reply = binary.BigEndian.AppendUint16(reply, p.Addr.Port())
	}
	return reply
}

func srvUDPError(txID uint32, msg string) []byte {
	b := binary.BigEndian.AppendUint32(nil, udpActionError)
	b = binary.BigEndian.AppendUint32(b, txID)
	return append(b, msg...)
}
