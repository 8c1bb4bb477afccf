package dht

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// findPeers runs n.FindPeers until the test ends and returns what it reports.
func findPeers(t *testing.T, n *Node, ih nodeID, port uint16) *peerSink {
	ctx, cancel := context.WithCancel(context.Background())
	sink := newPeerSink()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.FindPeers(ctx, ih, port, sink.found)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return sink
}

func TestNetworkFindsPeers(t *testing.T) {
	nodes := startNetwork(t, 10, 24, nil)
	ih := randomID()
	announcer, seeker := nodes[7], nodes[19]
	findPeers(t, announcer, ih, 4242)
	sink := findPeers(t, seeker, ih, 0)
	want := netip.AddrPortFrom(addrOf(announcer).Addr(), 4242)
	waitFor(t, "the seeker to find the announced peer", 40*time.Second, func() bool { return sink.has(want) })
	for p, n := range sink.snapshot() {
		if n != 1 {
			t.Errorf("peer %v reported %d times", p, n)
		}
		if p != want {
			t.Errorf("unexpected peer %v", p)
		}
	}
	stored := 0
	for _, n := range nodes {
		stored += n.Stats().Peers
	}
	if stored == 0 || stored > len(nodes) {
		t.Fatalf("%d peers stored across the network", stored)
	}
}

func TestNetworkAnswers(t *testing.T) {
	nodes := startNetwork(t, 40, 6, nil)
	r := newRawPeer(t, "127.0.0.60")
	to := addrOf(nodes[0])

	m := r.mustQuery(to, "ping", &msgArgs{})
	if m.Y != "r" || m.R.ID != string(nodes[0].id[:]) {
		t.Fatalf("ping answer %+v", m)
	}
	if ip, err := parseCompactAddr(m.IP); err != nil || ip != r.addr() {
		t.Fatalf("BEP 42 ip field %q: %v, %v", m.IP, ip, err)
	}
	m = r.mustQuery(to, "find_node", &msgArgs{Target: string(nodes[3].id[:])})
	got, err := parseNodes(m.R.Nodes, false, 100)
	if err != nil || len(got) == 0 || got[0].id != nodes[3].id || got[0].addr != addrOf(nodes[3]) {
		t.Fatalf("find_node: %v, %v", got, err)
	}
	m = r.mustQuery(to, "get_peers", &msgArgs{InfoHash: string(make([]byte, 20)), Want: []string{"n4", "n6"}})
	if m.R == nil || m.R.Token == "" || m.R.Nodes == "" || len(m.R.Values) != 0 {
		t.Fatalf("get_peers: %+v", m.R)
	}
	for _, c := range []struct {
		method string
		args   msgArgs
		code   int
	}{
		{"frobnicate", msgArgs{}, errMethod},
		{"ping", msgArgs{ID: "short"}, errProtocol},
		{"find_node", msgArgs{Target: "x"}, errProtocol},
		{"get_peers", msgArgs{}, errProtocol},
		{"announce_peer", msgArgs{InfoHash: string(make([]byte, 20)), Port: 1, Token: "forged"}, errProtocol},
		{"announce_peer", msgArgs{InfoHash: string(make([]byte, 20)), Port: 0, Token: m.R.Token}, errProtocol},
	} {
		m := r.mustQuery(to, c.method, &c.args)
		if m.Y != "e" || m.E.Code != c.code {
			t.Errorf("%s %+v: got %+v %+v, want error %d", c.method, c.args, m.R, m.E, c.code)
		}
	}
	// A valid announce, implied port, is stored and given back.
	ih := string(randomID().Bytes())
	tok := r.mustQuery(to, "get_peers", &msgArgs{InfoHash: ih}).R.Token
	if m := r.mustQuery(to, "announce_peer", &msgArgs{InfoHash: ih, Port: 1, ImpliedPort: 1, Token: tok}); m.Y != "r" {
		t.Fatalf("announce: %+v", m.E)
	}
	m = r.mustQuery(to, "get_peers", &msgArgs{InfoHash: ih})
	if len(m.R.Values) != 1 || m.R.Values[0] != string(appendCompactAddr(nil, r.addr())) {
		t.Fatalf("values %q", m.R.Values)
	}
	// The raw peer queried; the node pinged it back to verify before adding it. It did not
	// answer, so it is not in the table.
	if s := nodes[0].Stats(); s.QueriesIn == 0 || s.QueriesOut == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func (id nodeID) Bytes() []byte { return id[:] }

func TestStateFileRestart(t *testing.T) {
	nodes := startNetwork(t, 70, 12, nil)
	ih := randomID()
	findPeers(t, nodes[4], ih, 5555)
	want := netip.AddrPortFrom(addrOf(nodes[4]).Addr(), 5555)

	state := filepath.Join(t.TempDir(), "dht.state")
	x := startNode(t, "127.0.0.90", func(c *Config) {
		c.Bootstrap = []string{addrOf(nodes[0]).String()}
		c.StateFile = state
	})
	waitFor(t, "the node to join", 30*time.Second, func() bool { return x.Stats().GoodNodes >= 5 })
	id := x.ID()
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(state); err != nil {
		t.Fatalf("state file: %v", err)
	}
	x2 := startNode(t, "127.0.0.90", func(c *Config) { c.StateFile = state })
	if x2.ID() != id {
		t.Fatalf("restarted with ID %x, saved %x", x2.ID(), id)
	}
	sink := findPeers(t, x2, ih, 0)
	waitFor(t, "the restarted node to find the peer", 40*time.Second, func() bool { return sink.has(want) })
	if x2.Stats().GoodNodes == 0 {
		t.Fatal("the restarted node has an empty table")
	}

	// A corrupt state file is ignored.
	if err := os.WriteFile(state, []byte("d7:versioni1e2:id3:abce"), 0o644); err != nil {
		t.Fatal(err)
	}
	x3 := startNode(t, "127.0.0.91", func(c *Config) { c.StateFile = state })
	if x3.ID() == id {
		t.Fatal("the corrupt state's ID was used")
	}
}

func TestSecureOwnID(t *testing.T) {
	ext := netip.MustParseAddr("124.31.75.21")
	n := startNode(t, "127.0.0.95", func(c *Config) { c.ExternalIP = ext })
	if !isSecureID(n.ID(), ext) {
		t.Fatalf("ID %x is not secure for %v", n.ID(), ext)
	}
}

func TestIPv6Nodes6(t *testing.T) {
	c, err := listenUDPMaybe("::1")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
	a := startNode(t, "::1", nil)
	b := startNode(t, "::1", nil)
	b.AddNode(addrOf(a))
	waitFor(t, "b to add a", 20*time.Second, func() bool { return b.Stats().GoodNodes6 == 1 })
	if s := b.Stats(); s.Nodes != 0 {
		t.Fatalf("IPv4 table of an IPv6 node: %+v", s)
	}
	r := newRawPeer(t, "::1")
	m := r.mustQuery(addrOf(b), "find_node", &msgArgs{Target: string(a.id[:]), Want: []string{"n4", "n6"}})
	got, err := parseNodes(m.R.Nodes6, true, 100)
	if err != nil || len(got) != 1 || got[0].id != a.id || got[0].addr != addrOf(a) || m.R.Nodes != "" {
		t.Fatalf("nodes6 %v %v, nodes %q", got, err, m.R.Nodes)
	}
	// An IPv6 announce and lookup.
	ih := randomID()
	findPeers(t, a, ih, 7777)
	sink := findPeers(t, b, ih, 0)
	want := netip.AddrPortFrom(addrOf(a).Addr(), 7777)
	waitFor(t, "an IPv6 peer", 30*time.Second, func() bool { return sink.has(want) })
}

func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	n, err := New(Config{Addr: "127.0.0.99:0", Bootstrap: []string{"127.0.0.98:1", "localhost:1"}, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		n.FindPeers(context.Background(), randomID(), 1, func([]netip.AddrPort) {})
		close(done)
	}()
	n.AddNode(netip.MustParseAddrPort("127.0.0.97:1"))
	_ = n.Stats()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("FindPeers did not return on Close")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if s := n.Stats(); s != (Stats{}) {
		t.Fatalf("stats after Close: %+v", s)
	}
	waitFor(t, "goroutines to end", 10*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}

func listenUDPMaybe(ip string) (interface{ Close() error }, error) {
	return netListen(fmt.Sprintf("[%s]:0", ip))
}

// A lookup asked for the moment a node starts, before its bootstrap list is resolved and
// answered, waits for the bootstrap instead of ending empty and retrying much later.
func TestFindPeersRightAfterStartWaitsForBootstrap(t *testing.T) {
	nodes := startNetwork(t, 160, 8, nil)
	ih := randomID()
	announcer := nodes[3]
	findPeers(t, announcer, ih, 4343)
	want := netip.AddrPortFrom(addrOf(announcer).Addr(), 4343)
	waitFor(t, "the announce to be stored", 20*time.Second, func() bool {
		stored := 0
		for _, n := range nodes {
			stored += n.Stats().Peers
		}
		return stored > 0
	})
	for range 5 {
		late := startNode(t, "127.0.0.170", func(c *Config) {
			c.Bootstrap = []string{addrOf(nodes[0]).String()}
			c.retryMin, c.reannounce = time.Hour, time.Hour // an empty first round would mean no peers in this test
		})
		sink := findPeers(t, late, ih, 0)
		waitFor(t, "a lookup started at once to find the peer", 20*time.Second, func() bool { return sink.has(want) })
		late.Close()
	}
}
