package utp

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	l.SetOutput(testWriter{t})
	return logrus.NewEntry(l)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func listenUDP(t testing.TB) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// newSocketPair gives two sockets on loopback, each closed at cleanup; wrap, when set,
// wraps each packet connection (loss, reordering).
func newSocketPair(t testing.TB, wrap func(net.PacketConn) net.PacketConn) (*Socket, *Socket) {
	t.Helper()
	a, b := listenUDP(t), listenUDP(t)
	if wrap != nil {
		a, b = wrap(a), wrap(b)
	}
	sa, sb := NewSocket(a, testLog(t)), NewSocket(b, testLog(t))
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

// lossyConn drops a share of the packets it sends and holds back some others to send
// them after the next one (reordering). Its randomness is seeded: runs repeat.
type lossyConn struct {
	net.PacketConn
	mu      sync.Mutex
	rng     *rand.Rand
	drop    float64
	reorder float64
	held    []byte
	heldTo  net.Addr
}

func newLossy(pc net.PacketConn, seed uint64, drop, reorder float64) *lossyConn {
	return &lossyConn{PacketConn: pc, rng: rand.New(rand.NewPCG(seed, 1)), drop: drop, reorder: reorder}
}

func (l *lossyConn) WriteTo(b []byte, to net.Addr) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rng.Float64()
	switch {
	case r < l.drop:
		return len(b), nil
	case r < l.drop+l.reorder && l.held == nil:
		l.held, l.heldTo = append([]byte(nil), b...), to
		return len(b), nil
	}
	n, err := l.PacketConn.WriteTo(b, to)
	if l.held != nil {
		l.PacketConn.WriteTo(l.held, l.heldTo)
		l.held = nil
	}
	return n, err
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
