package dht

import (
	"net/netip"
	"time"
)

// Answer bounds.
const maxValuesOut = 50 // peers in one get_peers answer

// onQuery answers a query from another node, then considers the node for our table.
func (l *loop) onQuery(p packet, now time.Time) {
	m, from := &p.m, p.from
	if l.tableFor(from) == nil {
		return
	}
	l.queriesIn++
	if m.A == nil || len(m.A.ID) != 20 {
		l.sendError(m, from, errProtocol, "missing or malformed id")
		return
	}
	var r *msgReply
	switch m.Q {
	case "ping":
		r = &msgReply{}
	case "find_node":
		r = l.onFindNode(m, from, now)
	case "get_peers":
		r = l.onGetPeers(m, from, now)
	case "announce_peer":
		r = l.onAnnounce(m, from, now)
	default:
		l.sendError(m, from, errMethod, "method unknown")
		return
	}
	if r == nil {
		return // an error was sent
	}
	r.ID = string(l.n.id[:])
	l.send(from, &msg{T: m.T, Y: "r", R: r, IP: string(appendCompactAddr(nil, from))})

	id := nodeID([]byte(m.A.ID))
	if m.RO == 0 && id != l.n.id && l.tableFor(from).queried(id, from, now) && len(l.txs.m) < l.n.cfg.MaxPending/2 {
		l.ping(from, now) // it gets in when it answers, so a forged source never does
	}
}

func (l *loop) sendError(m *msg, to netip.AddrPort, code int, text string) {
	l.send(to, &msg{T: m.T, Y: "e", E: &krpcError{Code: code, Msg: text}})
}

// wants returns the families a requester asked for (BEP 32 "want"), by default its own.
func (l *loop) wants(m *msg, from netip.AddrPort) (v4, v6 bool) {
	if len(m.A.Want) == 0 {
		return from.Addr().Is4(), !from.Addr().Is4()
	}
	for _, w := range m.A.Want {
		switch w {
		case "n4":
			v4 = true
		case "n6":
			v6 = true
		}
	}
	return v4, v6
}

// fillNodes puts the nodes nearest target of the wanted families into r.
func (l *loop) fillNodes(r *msgReply, m *msg, from netip.AddrPort, target nodeID, now time.Time) {
	v4, v6 := l.wants(m, from)
	if v4 && l.t4 != nil {
		r.Nodes = string(appendNodes(nil, l.t4.closest(target, bucketSize, now), false))
	}
	if v6 && l.t6 != nil {
		r.Nodes6 = string(appendNodes(nil, l.t6.closest(target, bucketSize, now), true))
	}
}

func (l *loop) onFindNode(m *msg, from netip.AddrPort, now time.Time) *msgReply {
	if len(m.A.Target) != 20 {
		l.sendError(m, from, errProtocol, "missing or malformed target")
		return nil
	}
	r := &msgReply{}
	l.fillNodes(r, m, from, nodeID([]byte(m.A.Target)), now)
	return r
}

func (l *loop) onGetPeers(m *msg, from netip.AddrPort, now time.Time) *msgReply {
	if len(m.A.InfoHash) != 20 {
		l.sendError(m, from, errProtocol, "missing or malformed info_hash")
		return nil
	}
	ih := nodeID([]byte(m.A.InfoHash))
	r := &msgReply{Token: l.tokens.make(from.Addr())}
	v4, v6 := l.wants(m, from)
	for _, p := range l.store.sample(ih, maxValuesOut, v4, v6, now) {
		r.Values = append(r.Values, string(appendCompactAddr(nil, p)))
	}
	// Nodes too, even with values: they cost little and let lookups go on.
	l.fillNodes(r, m, from, ih, now)
	return r
}

func (l *loop) onAnnounce(m *msg, from netip.AddrPort, now time.Time) *msgReply {
	if len(m.A.InfoHash) != 20 {
		l.sendError(m, from, errProtocol, "missing or malformed info_hash")
		return nil
	}
	if !l.tokens.valid(m.A.Token, from.Addr()) {
		l.sendError(m, from, errProtocol, "bad token")
		return nil
	}
	port := from.Port()
	if m.A.ImpliedPort == 0 {
		if m.A.Port <= 0 || m.A.Port > 65535 {
			l.sendError(m, from, errProtocol, "bad port")
			return nil
		}
		port = uint16(m.A.Port)
	}
	l.store.add(nodeID([]byte(m.A.InfoHash)), netip.AddrPortFrom(from.Addr(), port), now)
	return &msgReply{}
}
