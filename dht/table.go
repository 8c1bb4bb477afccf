package dht

import (
	"net/netip"
	"slices"
	"time"
)

// Routing-table constants (BEP 5).
const (
	bucketSize      = 8                // k
	replacementSize = 8                // replacement cache per bucket
	goodFor         = 15 * time.Minute // a node that answered within this is good
	maxFailures     = 2                // failed queries in a row that make a node bad
	pingEvery       = time.Minute      // at most one liveness ping per node per this
)

type nodeState int

const (
	stateGood nodeState = iota
	stateQuestionable
	stateBad
)

// tableNode is one node in the routing table. Only nodes that answered one of our queries get
// in, so lastReply is never zero.
type tableNode struct {
	id        nodeID
	addr      netip.AddrPort
	secure    bool // its ID is a BEP 42 ID for its address (or the address is exempt)
	lastReply time.Time
	lastQuery time.Time // last query it sent us
	lastPing  time.Time // last liveness ping we sent it
	failures  int       // queries in a row it did not answer
}

func (n *tableNode) state(now time.Time) nodeState {
	switch {
	case n.failures >= maxFailures:
		return stateBad
	case now.Sub(n.lastReply) < goodFor || now.Sub(n.lastQuery) < goodFor:
		return stateGood
	default:
		return stateQuestionable
	}
}

func (n *tableNode) info() nodeInfo { return nodeInfo{id: n.id, addr: n.addr} }

type bucket struct {
	nodes   []*tableNode // at most bucketSize
	repl    []*tableNode // replacement cache, newest last, at most replacementSize
	changed time.Time    // last time a node was added, replaced or answered
}

// table is a Kademlia routing table for one address family. Bucket i, for i below the last,
// holds the nodes whose IDs share exactly i leading bits with ours; the last bucket holds all
// the others, and it is the one that splits when full. Pure logic: the caller passes now and
// sends the pings the table asks for. Owned by the node's loop.
type table struct {
	self    nodeID
	buckets []*bucket
	byAddr  map[netip.AddrPort]*tableNode // nodes in buckets (not replacements)
}

func newTable(self nodeID, now time.Time) *table {
	return &table{self: self, buckets: []*bucket{{changed: now}}, byAddr: map[netip.AddrPort]*tableNode{}}
}

func (t *table) bucketIndex(id nodeID) int {
	return min(commonPrefix(t.self, id), len(t.buckets)-1)
}

func (t *table) find(id nodeID) (*bucket, int) {
	b := t.buckets[t.bucketIndex(id)]
	for i, n := range b.nodes {
		if n.id == id {
			return b, i
		}
	}
	return b, -1
}

// replied records that id at addr answered a query of ours. It returns questionable nodes of a
// full bucket that the caller should ping so that bad ones can be replaced.
func (t *table) replied(id nodeID, addr netip.AddrPort, secure bool, now time.Time) (toPing []*tableNode) {
	if id == t.self {
		return nil
	}
	if old, ok := t.byAddr[addr]; ok && old.id != id {
		t.remove(old) // the node at this address restarted with another ID
	}
	b, i := t.find(id)
	if i >= 0 {
		n := b.nodes[i]
		if n.addr != addr {
			if n.state(now) != stateBad {
				return nil // keep the known address; the new one may be forged
			}
			delete(t.byAddr, n.addr)
			n.addr = addr
			t.byAddr[addr] = n
		}
		n.lastReply, n.failures, n.secure = now, 0, secure
		b.changed = now
		return nil
	}
	n := &tableNode{id: id, addr: addr, secure: secure, lastReply: now}
	for {
		b = t.buckets[t.bucketIndex(id)]
		if len(b.nodes) < bucketSize {
			t.insert(b, n, now)
			return nil
		}
		if !t.split() {
			break
		}
	}
	// Full and cannot split: replace a bad node, else let a secure node displace a
	// non-secure one, else keep it as a replacement and ask for questionable nodes to be pinged.
	victim := -1
	for i, o := range b.nodes {
		if o.state(now) == stateBad {
			victim = i
			break
		}
	}
	if victim < 0 && secure {
		for i, o := range b.nodes {
			if !o.secure && (victim < 0 || o.lastReply.Before(b.nodes[victim].lastReply)) {
				victim = i
			}
		}
	}
	if victim >= 0 {
		old := b.nodes[victim]
		delete(t.byAddr, old.addr)
		b.nodes = slices.Delete(b.nodes, victim, victim+1)
		if old.state(now) != stateBad {
			addReplacement(b, old)
		}
		t.insert(b, n, now)
		return nil
	}
	addReplacement(b, n)
	for _, o := range b.nodes {
		if o.state(now) == stateQuestionable && now.Sub(o.lastPing) >= pingEvery {
			o.lastPing = now
			toPing = append(toPing, o)
		}
	}
	return toPing
}

func (t *table) insert(b *bucket, n *tableNode, now time.Time) {
	b.repl = slices.DeleteFunc(b.repl, func(o *tableNode) bool { return o.id == n.id || o.addr == n.addr })
	b.nodes = append(b.nodes, n)
	t.byAddr[n.addr] = n
	b.changed = now
}

// addReplacement keeps n in b's replacement cache; a full cache drops its oldest non-secure
// entry for anyone, and its oldest entry only for a secure newcomer.
func addReplacement(b *bucket, n *tableNode) {
	b.repl = slices.DeleteFunc(b.repl, func(o *tableNode) bool { return o.id == n.id || o.addr == n.addr })
	if len(b.repl) >= replacementSize {
		drop := slices.IndexFunc(b.repl, func(o *tableNode) bool { return !o.secure })
		if drop < 0 {
			if !n.secure {
				return
			}
			drop = 0
		}
		b.repl = slices.Delete(b.repl, drop, drop+1)
	}
	b.repl = append(b.repl, n)
}

// split divides the last bucket if it may still split; it reports whether it did.
func (t *table) split() bool {
	last := len(t.buckets) - 1
	if last >= 159 {
		return false
	}
	old := t.buckets[last]
	nb := &bucket{changed: old.changed}
	keep := old.nodes[:0:0]
	for _, n := range old.nodes {
		if commonPrefix(t.self, n.id) > last {
			nb.nodes = append(nb.nodes, n)
		} else {
			keep = append(keep, n)
		}
	}
	var keepRepl []*tableNode
	for _, n := range old.repl {
		if commonPrefix(t.self, n.id) > last {
			nb.repl = append(nb.repl, n)
		} else {
			keepRepl = append(keepRepl, n)
		}
	}
	old.nodes, old.repl = keep, keepRepl
	t.buckets = append(t.buckets, nb)
	return true
}

func (t *table) remove(n *tableNode) {
	b, i := t.find(n.id)
	if i >= 0 && b.nodes[i] == n {
		b.nodes = slices.Delete(b.nodes, i, i+1)
		delete(t.byAddr, n.addr)
	}
}

// failed records that the node at addr did not answer. A node turning bad is replaced by the
// newest replacement, a secure one if there is one.
func (t *table) failed(addr netip.AddrPort, now time.Time) {
	n, ok := t.byAddr[addr]
	if !ok {
		return
	}
	n.failures++
	if n.state(now) != stateBad {
		return
	}
	b, i := t.find(n.id)
	if i < 0 || len(b.repl) == 0 {
		return
	}
	r := len(b.repl) - 1
	for j := r; j >= 0; j-- {
		if b.repl[j].secure {
			r = j
			break
		}
	}
	if !b.repl[r].secure && n.secure {
		return // a non-secure node never displaces a secure one, even a bad one
	}
	repl := b.repl[r]
	b.repl = slices.Delete(b.repl, r, r+1)
	delete(t.byAddr, n.addr)
	b.nodes[i] = repl
	t.byAddr[repl.addr] = repl
	b.changed = now
}

// queried records a query from id at addr. It reports whether the table would take the node
// if it answered a ping: then the caller pings it, so a forged source never gets in directly.
func (t *table) queried(id nodeID, addr netip.AddrPort, now time.Time) (wantPing bool) {
	if id == t.self {
		return false
	}
	if n, ok := t.byAddr[addr]; ok && n.id == id {
		n.lastQuery = now
		return false
	}
	b := t.buckets[t.bucketIndex(id)]
	if len(b.nodes) < bucketSize || b == t.buckets[len(t.buckets)-1] && len(t.buckets) < 160 {
		return true
	}
	return slices.ContainsFunc(b.nodes, func(o *tableNode) bool { return o.state(now) == stateBad })
}

// closest returns up to n non-bad nodes nearest to target, nearest first.
func (t *table) closest(target nodeID, n int, now time.Time) []nodeInfo {
	var all []nodeInfo
	for _, b := range t.buckets {
		for _, o := range b.nodes {
			if o.state(now) != stateBad {
				all = append(all, o.info())
			}
		}
	}
	slices.SortFunc(all, func(a, b nodeInfo) int { return cmpDistance(target, a.id, b.id) })
	return all[:min(n, len(all))]
}

// count returns the number of good nodes and of all nodes in buckets.
func (t *table) count(now time.Time) (good, total int) {
	for _, b := range t.buckets {
		for _, n := range b.nodes {
			total++
			if n.state(now) == stateGood {
				good++
			}
		}
	}
	return good, total
}

// staleBuckets returns a random target in each bucket unchanged for d, and marks those
// buckets changed so each is refreshed at most once per d.
func (t *table) staleBuckets(now time.Time, d time.Duration) []nodeID {
	var targets []nodeID
	for i, b := range t.buckets {
		if now.Sub(b.changed) < d {
			continue
		}
		b.changed = now
		last := i == len(t.buckets)-1
		targets = append(targets, randomIDWithPrefix(t.self, i, !last))
	}
	return targets
}

// questionable returns up to max questionable nodes not pinged within pingEvery, marking them
// pinged.
func (t *table) questionable(now time.Time, max int) []*tableNode {
	var out []*tableNode
	for _, b := range t.buckets {
		for _, n := range b.nodes {
			if len(out) >= max {
				return out
			}
			if n.state(now) == stateQuestionable && now.Sub(n.lastPing) >= pingEvery {
				n.lastPing = now
				out = append(out, n)
			}
		}
	}
	return out
}

// nodes returns every non-bad node, for the state file.
func (t *table) nodes(now time.Time) []nodeInfo {
	var out []nodeInfo
	for _, b := range t.buckets {
		for _, n := range b.nodes {
			if n.state(now) != stateBad {
				out = append(out, n.info())
			}
		}
	}
	return out
}
