package swarm_test

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// A seeder that chokes us for good but allows two pieces (BEP 6 allowed fast): we fetch
// those two while choked, and ask for nothing else.
func TestDownloadAllowedFastWhileChoked(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "af", map[string]int64{"a.bin": 8 * 32 << 10}, 32<<10)
	data, err := os.ReadFile(filepath.Join(src, "af", "a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[uint32]bool{3: true, 5: true}
	var mu sync.Mutex
	asked := map[uint32]int{}
	var conns atomic.Int32
	ln := acceptPeers(t, "127.0.0.67", &conns, func(c net.Conn) {
		var res wire.Reserved
		res.SetFast(true)
		if !answerHandshake(c, mi.InfoHash, res) {
			return
		}
		var out []byte
		out = (&wire.Message{ID: wire.HaveAll}).AppendTo(out)
		for i := range allowed {
			out = (&wire.Message{ID: wire.AllowedFast, Index: i}).AppendTo(out)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		r := wire.NewReader(c, 0)
		for {
			m, err := r.Read()
			if err != nil {
				return
			}
			if m.ID != wire.Request {
				continue
			}
			mu.Lock()
			asked[m.Index]++
			mu.Unlock()
			reply := wire.Message{ID: wire.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length}
			if allowed[m.Index] {
				off := int(m.Index)*(32<<10) + int(m.Begin)
				reply = wire.Message{ID: wire.Piece, Index: m.Index, Begin: m.Begin, Block: data[off : off+int(m.Length)]}
			}
			if _, err := c.Write(reply.AppendTo(nil)); err != nil {
				return
			}
		}
	})
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.68:0"})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}})
	testutil.WaitFor(t, 30*time.Second, "the allowed pieces while choked", func() bool {
		return tr.HasPiece(3) && tr.HasPiece(5)
	})
	mu.Lock()
	defer mu.Unlock()
	for i, n := range asked {
		if !allowed[i] {
			t.Errorf("asked a choking peer for piece %d (%d times), which it did not allow", i, n)
		}
	}
}

// We grant a new peer our allowed-fast set (pieces we have, at most 10) and serve those
// while we choke it; other pieces are rejected.
func TestGrantAllowedFast(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "grant", map[string]int64{"a.bin": 40 * 16 << 10}, 16<<10)
	seeder := newClient(t, swarm.ClientConfig{})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})

	var res wire.Reserved
	res.SetFast(true)
	conn := dialHandshake2(t, seeder.Addr(), mi.InfoHash, res)
	writeMsg(t, conn.c, wire.Message{ID: wire.HaveNone})
	conn.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	granted := map[uint32]bool{}
	for len(granted) < 10 {
		m, err := conn.r.Read()
		if err != nil {
			t.Fatalf("reading the allowed-fast set: %v (got %v)", err, granted)
		}
		if m.ID == wire.AllowedFast {
			granted[m.Index] = true
		}
	}
	// Not interested, so still choked: a granted piece is served, another rejected.
	var other uint32
	for other = range 40 {
		if !granted[other] {
			break
		}
	}
	var first uint32
	for first = range granted {
		break
	}
	writeMsg(t, conn.c, wire.Message{ID: wire.Request, Index: first, Begin: 0, Length: 16 << 10})
	writeMsg(t, conn.c, wire.Message{ID: wire.Request, Index: other, Begin: 0, Length: 16 << 10})
	gotPiece, gotReject := false, false
	for !(gotPiece && gotReject) {
		m, err := conn.r.Read()
		if err != nil {
			t.Fatalf("waiting for the answers: %v (piece %v, reject %v)", err, gotPiece, gotReject)
		}
		switch {
		case m.ID == wire.Piece && m.Index == first:
			gotPiece = true
		case m.ID == wire.Reject && m.Index == other:
			gotReject = true
		case m.ID == wire.Piece:
			t.Fatalf("served piece %d, which was not granted, while choking", m.Index)
		case m.ID == wire.Reject && m.Index == first:
			t.Fatalf("rejected granted piece %d", first)
		}
	}
}
