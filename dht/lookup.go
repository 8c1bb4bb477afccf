package dht

import (
	"net/netip"
	"slices"
)

// Lookup bounds.
const (
	alpha          = 3   // parallel queries
	maxCandidates  = 64  // candidates kept, nearest first
	maxSeen        = 512 // addresses remembered (queried or dropped) per lookup
	maxLookupQuery = 128 // queries one lookup may send
)

type candState int

const (
	candFresh candState = iota
	candInflight
	candAnswered
	candFailed
)

type candidate struct {
	id    nodeID
	hasID bool // false for seeds (bootstrap and saved nodes) until they answer
	addr  netip.AddrPort
	state candState
	slow  bool // in flight past the slow mark: no longer counted in lookup.inflight
	token string
}

// lookup is the state of one iterative Kademlia lookup toward target (BEP 5): it hands out
// addresses to query, alpha at a time, nearest first, and is done when the bucketSize nearest
// live candidates have all answered or nothing is left to ask. Pure logic, no I/O: the
// node's loop owns it, sends the queries and feeds back replies and timeouts.
type lookup struct {
	target   nodeID
	seeds    []*candidate
	cands    []*candidate // with IDs, nearest first, at most maxCandidates
	byAddr   map[netip.AddrPort]*candidate
	seen     map[netip.AddrPort]struct{}
	inflight int // queries in flight that hold a slot (not slow)
	sent     int
}

func newLookup(target nodeID) *lookup {
	return &lookup{target: target, byAddr: map[netip.AddrPort]*candidate{}, seen: map[netip.AddrPort]struct{}{}}
}

func (l *lookup) remember(addr netip.AddrPort) bool {
	if _, ok := l.seen[addr]; ok || len(l.seen) >= maxSeen {
		return false
	}
	l.seen[addr] = struct{}{}
	return true
}

// addSeeds adds addresses to query first, whose IDs we do not know yet.
func (l *lookup) addSeeds(addrs []netip.AddrPort) {
	for _, a := range addrs {
		if l.remember(a) {
			c := &candidate{addr: a}
			l.seeds = append(l.seeds, c)
			l.byAddr[a] = c
		}
	}
}

// addNodes adds nodes heard of, keeping the nearest maxCandidates.
func (l *lookup) addNodes(nodes []nodeInfo) {
	for _, n := range nodes {
		if !l.remember(n.addr) {
			continue
		}
		c := &candidate{id: n.id, hasID: true, addr: n.addr}
		l.insert(c)
	}
}

func (l *lookup) insert(c *candidate) {
	i, _ := slices.BinarySearchFunc(l.cands, c, func(a, b *candidate) int { return cmpDistance(l.target, a.id, b.id) })
	if i >= maxCandidates {
		return
	}
	l.cands = slices.Insert(l.cands, i, c)
	l.byAddr[c.addr] = c
	// Drop what falls past maxCandidates, except queries in flight, which stay until they end.
	for j := len(l.cands) - 1; j >= maxCandidates; j-- {
		if c := l.cands[j]; c.state != candInflight {
			delete(l.byAddr, c.addr)
			l.cands = slices.Delete(l.cands, j, j+1)
		}
	}
}

// next returns an address to query now, marking it in flight, or false when none should be
// queried yet.
func (l *lookup) next() (netip.AddrPort, bool) {
	if l.inflight >= alpha || l.sent >= maxLookupQuery {
		return netip.AddrPort{}, false
	}
	for _, c := range l.seeds {
		if c.state == candFresh {
			return l.start(c), true
		}
	}
	live := 0
	for _, c := range l.cands {
		if live >= bucketSize {
			break
		}
		switch c.state {
		case candFailed:
			continue
		case candFresh:
			return l.start(c), true
		}
		live++
	}
	return netip.AddrPort{}, false
}

func (l *lookup) start(c *candidate) netip.AddrPort {
	c.state = candInflight
	l.inflight++
	l.sent++
	return c.addr
}

// slow records that the query to addr is taking long: it frees its slot for the next
// candidate, and its answer is still welcome.
func (l *lookup) slow(addr netip.AddrPort) {
	c, ok := l.byAddr[addr]
	if !ok || c.state != candInflight || c.slow {
		return
	}
	c.slow = true
	l.inflight--
}

// land ends c's query, freeing its slot unless it was already freed as slow.
func (l *lookup) land(c *candidate) {
	if !c.slow {
		l.inflight--
	}
	c.slow = false
}

// replied records an answer from addr with its ID, token and the nodes it gave.
func (l *lookup) replied(addr netip.AddrPort, id nodeID, token string, nodes []nodeInfo) {
	c, ok := l.byAddr[addr]
	if !ok || c.state != candInflight {
		return
	}
	l.land(c)
	if c.hasID && c.id != id {
		c.state = candFailed // not the node we were told of
		return
	}
	c.state, c.token = candAnswered, token
	if !c.hasID {
		c.id, c.hasID = id, true
		l.insert(c)
	}
	l.addNodes(nodes)
}

// failed records that addr did not answer or answered with an error.
func (l *lookup) failed(addr netip.AddrPort) {
	c, ok := l.byAddr[addr]
	if !ok || c.state != candInflight {
		return
	}
	l.land(c)
	c.state = candFailed
}

// done says whether the lookup is over: nothing in flight and nothing more to ask. A slow
// query to one of the nearest live candidates still holds it open until it ends.
func (l *lookup) done() bool {
	if l.inflight > 0 {
		return false
	}
	if l.sent >= maxLookupQuery {
		return true
	}
	if slices.ContainsFunc(l.seeds, func(c *candidate) bool { return c.state == candFresh || c.state == candInflight }) {
		return false
	}
	live := 0
	for _, c := range l.cands {
		if live >= bucketSize {
			break
		}
		if c.state == candFailed {
			continue
		}
		if c.state == candFresh || c.state == candInflight {
			return false
		}
		live++
	}
	return true
}

// closestAnswered returns up to n answered candidates nearest the target, with their tokens.
func (l *lookup) closestAnswered(n int) []*candidate {
	var out []*candidate
	for _, c := range l.cands {
		if len(out) >= n {
			break
		}
		if c.state == candAnswered {
			out = append(out, c)
		}
	}
	return out
}
