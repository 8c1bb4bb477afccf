package swarm

// BEP 11 (ut_pex): telling each peer which peers we are connected to, and dialing the ones
// peers tell us about.
//
// Ownership: everything here runs on the torrent's loop. Each connection's PEX state (what
// we last told that peer, when it may hear from us next, when it last told us something) is
// its peerConn.pex; the addresses learned join the loop's candidates like a tracker's.
// A private torrent (BEP 27) or TorrentConfig.NoPEX never advertises, sends or reads ut_pex.

import (
	"net/netip"
	"slices"
	"time"

	"torrentfs/swarm/wire"
)

const (
	// pexExtID is the extended message id we ask peers to send ut_pex under.
	pexExtID = 2
	// pexInterval is how often a peer gets a message from us at most (BEP 11: once a minute).
	pexInterval = time.Minute
	// pexFirstDelay is how long after a peer's extension handshake its first message
	// waits: long enough that the connection is settled, short enough that a peer that just
	// joined learns the swarm at once.
	pexFirstDelay = 3 * time.Second
	// pexRecheck is how soon a peer that had nothing to hear is looked at again.
	pexRecheck = 5 * time.Second
	// pexMinGap is how often we read a peer's messages at most: a sender following BEP 11
	// waits a minute, and one that floods only has its extra messages ignored.
	pexMinGap = 45 * time.Second
	// pexMaxPayload bounds a message we read: 50 peers of each family with flags take under
	// 2.5 KB; a bigger one is ignored.
	pexMaxPayload = 32 << 10
	// pexMaxPeers is how many added and how many dropped peers one message we send carries
	// (BEP 11 asks for at most 50); the rest go in the next one.
	pexMaxPeers = wire.MaxPexPeers
	// pexMaxCands bounds the candidate pool that PEX may grow: past it, learned addresses
	// are not kept, so peers cannot fill our memory with addresses.
	pexMaxCands = 1000
)

// pexPeer is a connection's PEX state; the loop owns it.
type pexPeer struct {
	id         int    // the peer's ut_pex id, 0 when it takes no ut_pex
	listenPort uint16 // the port its extension handshake says it listens on, 0 if none
	outgoing   bool   // we dialed it: its address is one it accepts connections on
	next       time.Time
	sent       map[netip.AddrPort]wire.PexFlags // what it has been told is connected
	lastRecv   time.Time                        // when we last read its message
}

// pexEnabled tells whether the torrent speaks ut_pex at all.
func (t *Torrent) pexEnabled() bool { return !t.info.Private && !t.cfg.NoPEX }

// pexEvery is how long a peer waits between our messages.
func (t *Torrent) pexEvery() time.Duration {
	if t.cfg.pexInterval > 0 {
		return t.cfg.pexInterval
	}
	return pexInterval
}

// listenAddr is the address others can dial p on, if we know one: the one we dialed, or
// for a peer that dialed us its IP with the port of its extension handshake.
func (p *peerConn) listenAddr() (netip.AddrPort, bool) {
	switch {
	case p.pex.outgoing:
		return p.addr, true
	case p.pex.listenPort != 0:
		return netip.AddrPortFrom(p.addr.Addr(), p.pex.listenPort), true
	}
	return netip.AddrPort{}, false
}

// notePexHandshake records what the peer's extension handshake says about PEX.
func (t *Torrent) notePexHandshake(p *peerConn, h wire.ExtHandshake, now time.Time) {
	p.pex.listenPort = uint16(h.P)
	id := h.M[wire.ExtPex]
	if id != 0 && p.pex.next.IsZero() {
		p.pex.next = now.Add(pexFirstDelay)
	}
	// A later handshake may change or drop the id (BEP 10).
	p.pex.id = id
}

// pexConnected lists the peers we are connected to that others could dial, with the
// flags BEP 11 defines that we know.
func (t *Torrent) pexConnected() map[netip.AddrPort]wire.PexFlags {
	m := make(map[netip.AddrPort]wire.PexFlags, len(t.peers.list))
	for _, p := range t.peers.list {
		a, ok := p.listenAddr()
		if !ok {
			continue
		}
		var f wire.PexFlags
		if p.hasAll || p.has.All() {
			f |= wire.PexSeed
		}
		if p.pex.outgoing {
			f |= wire.PexReachable
		}
		m[a] = f
	}
	return m
}

// pexTick sends each peer that takes ut_pex and is due its message: what changed since the
// last one it got.
func (t *Torrent) pexTick(now time.Time) {
	if !t.pexEnabled() {
		return
	}
	var connected map[netip.AddrPort]wire.PexFlags
	for _, p := range t.peers.list {
		if p.pex.id == 0 || now.Before(p.pex.next) {
			continue
		}
		if connected == nil {
			connected = t.pexConnected()
		}
		self, _ := p.listenAddr()
		m := pexDiff(p.pex.sent, connected, self)
		if len(m.Added) == 0 && len(m.Dropped) == 0 {
			p.pex.next = now.Add(min(pexRecheck, t.pexEvery()))
			continue
		}
		b, err := m.Encode()
		if err != nil {
			p.log.WithError(err).Debug("cannot encode ut_pex")
			p.pex.next = now.Add(t.pexEvery())
			continue
		}
		if p.pex.sent == nil {
			p.pex.sent = make(map[netip.AddrPort]wire.PexFlags)
		}
		for _, a := range m.Added {
			p.pex.sent[a.Addr] = a.Flags
		}
		for _, a := range m.Dropped {
			delete(p.pex.sent, a)
		}
		p.send(wire.Message{ID: wire.Extended, ExtID: uint8(p.pex.id), Payload: b})
		p.pex.next = now.Add(t.pexEvery())
	}
}

// pexDiff is the message that brings a peer told sent up to connected: the peers added
// since, the ones gone, at most pexMaxPeers of each (in address order, so the rest follow
// in the next message), never the peer itself (self).
func pexDiff(sent, connected map[netip.AddrPort]wire.PexFlags, self netip.AddrPort) wire.PexMessage {
	var m wire.PexMessage
	for a, f := range connected {
		if _, ok := sent[a]; !ok && a != self {
			m.Added = append(m.Added, wire.PexPeer{Addr: a, Flags: f})
		}
	}
	for a := range sent {
		if _, ok := connected[a]; !ok {
			m.Dropped = append(m.Dropped, a)
		}
	}
	slices.SortFunc(m.Added, func(x, y wire.PexPeer) int { return x.Addr.Compare(y.Addr) })
	slices.SortFunc(m.Dropped, netip.AddrPort.Compare)
	m.Added = m.Added[:min(len(m.Added), pexMaxPeers)]
	m.Dropped = m.Dropped[:min(len(m.Dropped), pexMaxPeers)]
	return m
}

// handlePex reads a peer's ut_pex message and adds the peers it names to the candidates.
// Only a payload that is not a dictionary costs the connection; too big or too early
// messages are ignored.
func (t *Torrent) handlePex(p *peerConn, payload []byte, now time.Time) {
	if !t.pexEnabled() {
		return
	}
	if len(payload) > pexMaxPayload {
		p.log.Debugf("ignoring a ut_pex message of %d bytes", len(payload))
		return
	}
	if !p.pex.lastRecv.IsZero() && now.Sub(p.pex.lastRecv) < pexMinGap {
		p.log.Debugf("ignoring a ut_pex message %v after the last", now.Sub(p.pex.lastRecv).Round(time.Millisecond))
		return
	}
	m, err := wire.ParsePexMessage(payload)
	if err != nil {
		t.disconnect(p, err.Error())
		return
	}
	p.pex.lastRecv = now
	connected := t.pexConnected()
	seeding := t.pk.Done()
	learned := 0
	for _, a := range m.Added {
		if len(t.cands) >= pexMaxCands {
			break
		}
		// Connected already, or a seed while we seed too: nothing to trade.
		if _, ok := connected[a.Addr]; ok || seeding && a.Flags&wire.PexSeed != 0 {
			continue
		}
		n := len(t.cands)
		t.addCandidate(a.Addr)
		if len(t.cands) > n {
			learned++
		}
	}
	p.log.Debugf("learned %d new peers through PEX (%d added, %d dropped)", learned, len(m.Added), len(m.Dropped))
	if learned > 0 {
		t.dialMore(now)
	}
}
