package dht

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// idAt returns an ID sharing exactly cpl leading bits with self, made distinct by n.
func idAt(self nodeID, cpl int, n byte) nodeID {
	id := randomIDWithPrefix(self, cpl, true)
	id[19] = n
	if cpl >= 152 {
		panic("idAt: too deep for the tag byte")
	}
	return id
}

func addrN(n int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)}), 6881)
}

func TestRandomIDWithPrefix(t *testing.T) {
	self := randomID()
	for _, n := range []int{0, 1, 7, 8, 9, 100, 159} {
		for range 20 {
			if got := commonPrefix(self, randomIDWithPrefix(self, n, true)); got != n {
				t.Fatalf("prefix %d: got %d", n, got)
			}
			if got := commonPrefix(self, randomIDWithPrefix(self, n, false)); got < n {
				t.Fatalf("prefix >= %d: got %d", n, got)
			}
		}
	}
}

func TestTableSplit(t *testing.T) {
	self := nodeID{}
	tb := newTable(self, t0)
	// Eight far nodes fill the single bucket; a ninth near one splits it.
	for i := range bucketSize {
		tb.replied(idAt(self, 0, byte(i)), addrN(i), true, t0)
	}
	if len(tb.buckets) != 1 {
		t.Fatalf("%d buckets before the split", len(tb.buckets))
	}
	tb.replied(idAt(self, 5, 1), addrN(100), true, t0)
	if len(tb.buckets) != 2 {
		t.Fatalf("%d buckets after the split, want 2", len(tb.buckets))
	}
	if len(tb.buckets[0].nodes) != bucketSize || len(tb.buckets[1].nodes) != 1 {
		t.Fatalf("bucket sizes %d, %d", len(tb.buckets[0].nodes), len(tb.buckets[1].nodes))
	}
	// Another far node cannot get in: bucket 0 does not hold our ID, so it does not split.
	tb.replied(idAt(self, 0, 200), addrN(200), true, t0)
	if len(tb.buckets[0].nodes) != bucketSize || len(tb.buckets[0].repl) != 1 {
		t.Fatalf("far bucket: %d nodes, %d replacements", len(tb.buckets[0].nodes), len(tb.buckets[0].repl))
	}
	// Nodes near us keep splitting the last bucket.
	for i := range 40 {
		tb.replied(idAt(self, 10+i, byte(i)), addrN(300+i), true, t0)
	}
	good, total := tb.count(t0)
	if total != bucketSize+1+40 || good != total {
		t.Fatalf("count %d/%d", good, total)
	}
	for i, b := range tb.buckets {
		if len(b.nodes) > bucketSize {
			t.Fatalf("bucket %d has %d nodes", i, len(b.nodes))
		}
		for _, n := range b.nodes {
			if tb.bucketIndex(n.id) != i {
				t.Fatalf("node %x in bucket %d, belongs in %d", n.id, i, tb.bucketIndex(n.id))
			}
		}
	}
	// Our own ID never gets in.
	tb.replied(self, addrN(999), true, t0)
	if _, ok := tb.byAddr[addrN(999)]; ok {
		t.Fatal("our own ID was added")
	}
}

func fullFarBucket(t *testing.T, secure bool) (*table, nodeID) {
	t.Helper()
	self := nodeID{}
	tb := newTable(self, t0)
	tb.replied(idAt(self, 3, 0), addrN(50), true, t0) // so bucket 0 can split off
	for i := range bucketSize {
		tb.replied(idAt(self, 0, byte(i)), addrN(i), secure, t0)
	}
	for i := range 8 { // force the splits that make bucket 0 hold only far nodes
		tb.replied(idAt(self, 3, byte(i+1)), addrN(60+i), true, t0)
	}
	if len(tb.buckets[0].nodes) != bucketSize || tb.bucketIndex(idAt(self, 0, 99)) != 0 || len(tb.buckets) < 2 {
		t.Fatalf("setup: %d buckets, %d in the far one", len(tb.buckets), len(tb.buckets[0].nodes))
	}
	return tb, self
}

func TestTableReplacement(t *testing.T) {
	tb, self := fullFarBucket(t, true)
	newcomer := idAt(self, 0, 100)
	now := t0.Add(time.Minute)
	if toPing := tb.replied(newcomer, addrN(100), true, now); len(toPing) != 0 {
		t.Fatalf("all good, yet asked to ping %d", len(toPing))
	}
	b := tb.buckets[0]
	if len(b.repl) != 1 || b.repl[0].id != newcomer {
		t.Fatalf("replacement cache: %v", b.repl)
	}
	// After 15 minutes of silence the nodes are questionable: a newcomer asks for pings.
	later := t0.Add(20 * time.Minute)
	toPing := tb.replied(idAt(self, 0, 101), addrN(101), true, later)
	if len(toPing) != bucketSize {
		t.Fatalf("asked to ping %d questionable nodes, want %d", len(toPing), bucketSize)
	}
	// One of them fails twice: it turns bad and the newest replacement takes its place.
	victim := b.nodes[2]
	tb.failed(victim.addr, later)
	if _, ok := tb.byAddr[victim.addr]; !ok {
		t.Fatal("replaced after one failure")
	}
	tb.failed(victim.addr, later)
	if _, ok := tb.byAddr[victim.addr]; ok {
		t.Fatal("bad node still in the table")
	}
	if _, ok := tb.byAddr[addrN(101)]; !ok {
		t.Fatal("the newest replacement did not take the bad node's place")
	}
	if len(b.nodes) != bucketSize || len(b.repl) != 1 {
		t.Fatalf("%d nodes, %d replacements", len(b.nodes), len(b.repl))
	}
	// The replacement cache is bounded.
	for i := range 3 * replacementSize {
		tb.replied(idAt(self, 0, byte(120+i)), addrN(120+i), true, later)
	}
	if len(b.repl) != replacementSize {
		t.Fatalf("%d replacements", len(b.repl))
	}
}

func TestTableSecurePreferred(t *testing.T) {
	tb, self := fullFarBucket(t, false)
	b := tb.buckets[0]
	// A non-secure newcomer waits in the cache; a secure one displaces a non-secure node.
	tb.replied(idAt(self, 0, 100), addrN(100), false, t0)
	if _, ok := tb.byAddr[addrN(100)]; ok {
		t.Fatal("a non-secure node displaced another")
	}
	tb.replied(idAt(self, 0, 101), addrN(101), true, t0)
	if _, ok := tb.byAddr[addrN(101)]; !ok {
		t.Fatal("a secure node did not displace a non-secure one")
	}
	// Fill with secure nodes; then non-secure ones never displace them, not even bad ones.
	for i := range bucketSize {
		tb.replied(idAt(self, 0, byte(140+i)), addrN(140+i), true, t0)
	}
	for _, n := range b.nodes {
		if !n.secure {
			t.Fatalf("non-secure node %v left", n.addr)
		}
	}
	b.repl = nil
	tb.replied(idAt(self, 0, 199), addrN(199), false, t0)
	victim := b.nodes[0]
	tb.failed(victim.addr, t0)
	tb.failed(victim.addr, t0)
	if _, ok := tb.byAddr[victim.addr]; !ok {
		t.Fatal("a non-secure replacement displaced a secure node")
	}
}

func TestTableClosest(t *testing.T) {
	self := randomID()
	tb := newTable(self, t0)
	var all []nodeInfo
	for i := range 200 {
		id := randomID()
		tb.replied(id, addrN(i), true, t0)
	}
	for _, b := range tb.buckets {
		for _, n := range b.nodes {
			all = append(all, n.info())
		}
	}
	for range 20 {
		target := randomID()
		got := tb.closest(target, bucketSize, t0)
		want := slices.Clone(all)
		slices.SortFunc(want, func(a, b nodeInfo) int { return cmpDistance(target, a.id, b.id) })
		if !slices.Equal(got, want[:bucketSize]) {
			t.Fatalf("closest to %x:\n got %v\nwant %v", target, got, want[:bucketSize])
		}
	}
	// Bad nodes are left out.
	first := tb.closest(self, 1, t0)[0]
	tb.failed(first.addr, t0)
	tb.failed(first.addr, t0)
	if got := tb.closest(self, 1, t0); len(got) == 1 && got[0] == first {
		t.Fatal("a bad node is among the closest")
	}
}

func TestTableAddressChange(t *testing.T) {
	self := nodeID{}
	tb := newTable(self, t0)
	id := idAt(self, 0, 1)
	tb.replied(id, addrN(1), true, t0)
	// The same ID from another address does not move a live node (could be forged).
	tb.replied(id, addrN(2), true, t0)
	if _, ok := tb.byAddr[addrN(2)]; ok {
		t.Fatal("a live node moved to a new address")
	}
	// A new ID at a known address replaces the old entry (the node restarted).
	id2 := idAt(self, 0, 2)
	tb.replied(id2, addrN(1), true, t0)
	if n := tb.byAddr[addrN(1)]; n == nil || n.id != id2 {
		t.Fatalf("address 1 holds %v", n)
	}
	if _, total := tb.count(t0); total != 1 {
		t.Fatalf("%d nodes", total)
	}
}

func TestTableQueried(t *testing.T) {
	tb, self := fullFarBucket(t, true)
	if tb.queried(idAt(self, 0, 100), addrN(100), t0) {
		t.Fatal("wants a ping for a node its full bucket cannot take")
	}
	if !tb.queried(idAt(self, 120, 1), addrN(101), t0) {
		t.Fatal("no ping for a node the last bucket can take")
	}
	known := tb.buckets[0].nodes[0]
	later := t0.Add(20 * time.Minute)
	if tb.queried(known.id, known.addr, later) || known.state(later) != stateGood {
		t.Fatal("a known node's query did not keep it good")
	}
}

func TestTableStaleBuckets(t *testing.T) {
	tb := newTable(nodeID{}, t0)
	got := []int{
		len(tb.staleBuckets(t0.Add(time.Minute), refreshAfter)),
		len(tb.staleBuckets(t0.Add(time.Hour), refreshAfter)),
		len(tb.staleBuckets(t0.Add(time.Hour), refreshAfter)),
	}
	if !slices.Equal(got, []int{0, 1, 0}) {
		t.Fatalf("stale buckets: %v", got)
	}
}
