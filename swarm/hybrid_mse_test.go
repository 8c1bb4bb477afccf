package swarm_test

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/swarm"
	"torrentfs/swarm/mse"
	"torrentfs/swarm/wire"
)

// TestHybridEncryptedDialToV1OnlyPeer: our encrypted dials of a hybrid name its v2 hash
// first (libtorrent upgrades an encrypted connection only then); a peer that knows the
// torrent by its v1 hash alone drops that try, and the next encrypted one, naming the v1
// hash, connects: with encryption required there is no plaintext to fall back on.
func TestHybridEncryptedDialToV1OnlyPeer(t *testing.T) {
	mi, _ := makeHybrid(t, t.TempDir(), 64<<10)
	v1 := mi.InfoHash
	var conns, refused, accepted atomic.Int32
	ln := acceptPeers(t, "127.0.0.61", &conns, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		sc, plain, err := mse.Sniff(c)
		if err != nil || plain {
			return
		}
		known := func(req2 [20]byte) ([20]byte, bool) { return v1, mse.Req2(v1) == req2 }
		ec, _, _, ia, err := mse.Accept(sc, known, mse.RC4)
		if err != nil {
			refused.Add(1) // an unknown key: a v1-only client hangs up
			return
		}
		ec = mse.Prepend(ec, ia)
		if !answerHandshake(ec, v1, wire.Reserved{}) {
			return
		}
		accepted.Add(1)
		buf := make([]byte, 1<<10)
		for {
			if _, err := ec.Read(buf); err != nil {
				return
			}
		}
	})
	c := newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionRequire})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{},
		Peers: []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}})
	testutil.WaitFor(t, 20*time.Second, "an encrypted connection to the v1-only peer", func() bool {
		ps := tr.Peers(context.Background())
		return len(ps) == 1 && ps[0].Encrypted
	})
	if refused.Load() == 0 {
		t.Error("no encrypted try named the v2 hash first")
	}
	if accepted.Load() != 1 {
		t.Errorf("%d connections accepted, want 1", accepted.Load())
	}
}
