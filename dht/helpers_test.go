package dht

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// testLog discards logs unless DHT_TEST_LOG is set.
func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if os.Getenv("DHT_TEST_LOG") != "" {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l).WithField("test", t.Name())
}

func listenUDP(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startNode starts a node on its own socket at ip with test timings; mod adjusts the config.
func startNode(t *testing.T, ip string, mod func(*Config)) *Node {
	t.Helper()
	cfg := Config{
		Conn:         listenUDP(t, ip),
		QueryTimeout: 500 * time.Millisecond,
		Log:          testLog(t),
		retryMin:     200 * time.Millisecond,
		reannounce:   2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func addrOf(n *Node) netip.AddrPort {
	return n.Addr().(*net.UDPAddr).AddrPort()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startNetwork starts size nodes on 127.0.0.base, base+1, ..., all bootstrapped from the
// first, and waits until every one knows some others.
func startNetwork(t *testing.T, base, size int, mod func(*Config)) []*Node {
	t.Helper()
	nodes := []*Node{startNode(t, fmt.Sprintf("127.0.0.%d", base), mod)}
	boot := addrOf(nodes[0]).String()
	for i := 1; i < size; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("127.0.0.%d", base+i), func(c *Config) {
			c.Bootstrap = []string{boot}
			if mod != nil {
				mod(c)
			}
		}))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		formed := true
		var counts []int
		for _, n := range nodes {
			s := n.Stats()
			counts = append(counts, s.GoodNodes)
			formed = formed && s.GoodNodes >= min(3, size-1)
		}
		if formed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the network did not form: good nodes per node %v", counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nodes
}

// rawPeer is a hand-driven KRPC endpoint for poking at a node.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
	id   nodeID
	tid  int
}

func newRawPeer(t *testing.T, ip string) *rawPeer {
	return &rawPeer{t: t, conn: listenUDP(t, ip), id: randomID()}
}

func (r *rawPeer) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (r *rawPeer) send(to netip.AddrPort, m *msg) {
	r.t.Helper()
	b, err := encodeMsg(m)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendRaw(to, b)
}

func (r *rawPeer) sendRaw(to netip.AddrPort, b []byte) {
	if _, err := r.conn.WriteToUDPAddrPort(b, to); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// query sends a query and returns the answer with the same transaction ID, or false after
// timeout.
func (r *rawPeer) query(to netip.AddrPort, method string, a *msgArgs, timeout time.Duration) (msg, bool) {
	r.t.Helper()
	r.tid++
	tid := fmt.Sprintf("r%d", r.tid)
	if a.ID == "" {
		a.ID = string(r.id[:])
	}
	r.send(to, &msg{T: tid, Y: "q", Q: method, A: a})
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		r.conn.SetReadDeadline(deadline)
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return msg{}, false
		}
		m, err := decodeMsg(buf[:n])
		if err == nil && m.T == tid && from == to {
			return m, true
		}
	}
}

// mustQuery retries a query until answered (the first may be lost under a flood).
func (r *rawPeer) mustQuery(to netip.AddrPort, method string, a *msgArgs) msg {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m, ok := r.query(to, method, a, 300*time.Millisecond); ok {
			return m
		}
	}
	r.t.Fatalf("no answer to %s from %v", method, to)
	return msg{}
}

// serve answers queries on r's socket with handle (nil = no answer) until the test ends.
func (r *rawPeer) serve(handle func(m msg, from netip.AddrPort) *msg) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			n, from, err := r.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m, err := decodeMsg(buf[:n])
			if err != nil {
				continue
			}
			if out := handle(m, from); out != nil {
				b, _ := encodeMsg(out)
				r.conn.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	r.t.Cleanup(func() { r.conn.Close(); wg.Wait() })
}

// peerSink collects what FindPeers reports.
type peerSink struct {
	mu    sync.Mutex
	peers map[netip.AddrPort]int
	calls int
}

func newPeerSink() *peerSink { return &peerSink{peers: map[netip.AddrPort]int{}} }

func (s *peerSink) found(ps []netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, p := range ps {
		s.peers[p]++
	}
}

func (s *peerSink) has(p netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[p] > 0
}

func (s *peerSink) snapshot() map[netip.AddrPort]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[netip.AddrPort]int{}
	for k, v := range s.peers {
		out[k] = v
	}
	return out
}

func netListen(addr string) (net.PacketConn, error) { return net.ListenPacket("udp", addr) }
