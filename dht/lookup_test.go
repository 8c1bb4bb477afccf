package dht

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestLookupConverges runs the pure lookup against a simulated network of routing tables: the
// lookup must end on the true bucketSize nearest live nodes, with at most alpha queries in
// flight.
func TestLookupConverges(t *testing.T) {
	const size = 300
	nodes := make([]nodeInfo, size)
	for i := range nodes {
		nodes[i] = nodeInfo{id: randomID(), addr: addrN(i + 1)}
	}
	dead := func(i int) bool { return i%17 == 5 }
	// Each live node has a real routing table holding the live nodes that fit; its answers
	// also name the dead node nearest the target, which the lookup must survive.
	tables := make([]*table, size)
	deadTable := newTable(nodeID{}, t0)
	for i, n := range nodes {
		if dead(i) {
			deadTable.replied(n.id, n.addr, true, t0)
			continue
		}
		tables[i] = newTable(n.id, t0)
		for _, j := range rand.Perm(size) {
			if !dead(j) {
				tables[i].replied(nodes[j].id, nodes[j].addr, true, t0)
			}
		}
	}
	answer := func(i int, target nodeID) []nodeInfo {
		return append(tables[i].closest(target, bucketSize, t0), deadTable.closest(target, 1, t0)...)
	}
	for round := range 20 {
		target := randomID()
		l := newLookup(target)
		l.addSeeds([]netip.AddrPort{nodes[round].addr, nodes[5].addr})
		byAddr := map[netip.AddrPort]int{}
		for i, n := range nodes {
			byAddr[n.addr] = i
		}
		for steps := 0; !l.done(); steps++ {
			if steps > 10000 {
				t.Fatal("lookup does not end")
			}
			var batch []int
			for {
				a, ok := l.next()
				if !ok {
					break
				}
				batch = append(batch, byAddr[a])
			}
			if len(batch) > alpha || l.inflight > alpha {
				t.Fatalf("%d queries in flight", l.inflight)
			}
			for _, i := range batch {
				if dead(i) {
					l.failed(nodes[i].addr)
					continue
				}
				l.replied(nodes[i].addr, nodes[i].id, "tok", answer(i, target))
			}
		}
		var live []nodeInfo
		for i, n := range nodes {
			if !dead(i) {
				live = append(live, n)
			}
		}
		slices.SortFunc(live, func(a, b nodeInfo) int { return cmpDistance(target, a.id, b.id) })
		got := l.closestAnswered(bucketSize)
		for i, c := range got {
			if c.id != live[i].id || c.token != "tok" {
				t.Fatalf("round %d: closest #%d is %x, want %x", round, i, c.id, live[i].id)
			}
		}
		if l.sent > maxLookupQuery {
			t.Fatalf("%d queries sent", l.sent)
		}
	}
}

// Queries that are slow to answer give their slot to the next candidate, hold the lookup
// open until they end, and still count when their answer comes.
func TestLookupSlowQueriesFreeTheirSlots(t *testing.T) {
	target := randomID()
	l := newLookup(target)
	var nodes []nodeInfo
	for i := range 6 {
		nodes = append(nodes, nodeInfo{id: randomID(), addr: addrN(i + 1)})
	}
	l.addNodes(nodes)
	var first []netip.AddrPort
	for range alpha {
		a, ok := l.next()
		if !ok {
			t.Fatal("no query to send")
		}
		first = append(first, a)
	}
	if _, ok := l.next(); ok {
		t.Fatal("more than alpha queries in flight")
	}
	for _, a := range first {
		l.slow(a)
	}
	var second []netip.AddrPort
	for range alpha {
		a, ok := l.next()
		if !ok {
			t.Fatal("slow queries still hold their slots")
		}
		second = append(second, a)
	}
	for _, a := range second {
		l.failed(a)
	}
	if l.done() {
		t.Fatal("done while slow queries to near nodes are pending")
	}
	byAddr := map[netip.AddrPort]nodeID{}
	for _, n := range nodes {
		byAddr[n.addr] = n.id
	}
	for _, a := range first {
		l.replied(a, byAddr[a], "tok", nil)
	}
	if l.inflight != 0 {
		t.Fatalf("inflight = %d after every query ended, want 0", l.inflight)
	}
	if !l.done() {
		t.Fatal("not done once every query ended")
	}
	if got := len(l.closestAnswered(bucketSize)); got != alpha {
		t.Fatalf("%d answered, want the %d slow ones", got, alpha)
	}
}
