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
		known := func(req2 [20]byte) ([20]byte, bool) { return v1, mse.Req2(v1) == req2 }
		serveMSE(c, known, wire.Reserved{}, fakeMSEHooks{
			refused:  func() { refused.Add(1) }, // an unknown key: a v1-only client hangs up
			answered: func([20]byte) { accepted.Add(1) },
		})
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

// TestHybridEncryptedDialRetriesV2: a peer that knows a hybrid by both hashes drops our
// first encrypted try naming the v2 hash for some other reason (libtorrent drops a new
// connection from an IP it still holds one from) and answers the v1-named try with the v2
// bit. The v1 connection, which libtorrent never upgrades under MSE, is closed and the v2
// hash named again: the connection ends v2. A peer that drops every v2-named try ends with
// the second v1 connection.
func TestHybridEncryptedDialRetriesV2(t *testing.T) {
	for _, tc := range []struct {
		name   string
		drops  int32 // v2-named tries the peer drops
		wantV2 bool
	}{
		{"drops once", 1, true},
		{"drops always", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mi, _ := makeHybrid(t, t.TempDir(), 64<<10)
			v1, v2 := mi.InfoHash, mi.InfoHashV2.Truncate()
			var conns, v2Tries, v1Conns, v2Conns, v1Closed atomic.Int32
			var bit wire.Reserved
			bit.SetV2(true)
			ln := acceptPeers(t, "127.0.0.62", &conns, func(c net.Conn) {
				// libtorrent drops a connection it will not take once it reads which torrent
				// the MSE request names, before it answers.
				known := func(req2 [20]byte) ([20]byte, bool) {
					if mse.Req2(v2) == req2 {
						return v2, v2Tries.Add(1) > tc.drops
					}
					return v1, mse.Req2(v1) == req2
				}
				serveMSE(c, known, bit, fakeMSEHooks{
					answered: func(skey [20]byte) {
						if skey == v2 {
							v2Conns.Add(1)
						} else {
							v1Conns.Add(1)
						}
					},
					closed: func(skey [20]byte) {
						if skey == v1 {
							v1Closed.Add(1)
						}
					},
				})
			})
			c := newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionRequire})
			tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{},
				Peers: []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}})
			testutil.WaitFor(t, 20*time.Second, "an encrypted connection to the peer", func() bool {
				ps := tr.Peers(context.Background())
				return len(ps) == 1 && ps[0].Encrypted
			})
			if got := tr.NumV2Peers() == 1; got != tc.wantV2 {
				t.Errorf("v2 connection: %v, want %v", got, tc.wantV2)
			}
			testutil.WaitFor(t, 10*time.Second, "the first v1 connection closed", func() bool { return v1Closed.Load() == 1 })
			wantV1, wantV2Conns, wantTries := int32(1), int32(1), int32(2)
			if !tc.wantV2 {
				wantV1, wantV2Conns = 2, 0
			}
			if v1Conns.Load() != wantV1 || v2Conns.Load() != wantV2Conns || v2Tries.Load() != wantTries {
				t.Errorf("v1 connections %d, v2 connections %d, v2-named tries %d; want %d, %d, %d",
					v1Conns.Load(), v2Conns.Load(), v2Tries.Load(), wantV1, wantV2Conns, wantTries)
			}
		})
	}
}

// fakeMSEHooks are what serveMSE tells its test; a nil hook is not called.
type fakeMSEHooks struct {
	refused  func()              // the MSE request named a key known refuses
	answered func(skey [20]byte) // before the BitTorrent handshake's answer, which our side may act on at once
	closed   func(skey [20]byte) // our side closed the connection
}

// serveMSE serves an accepted connection as an encrypted-only peer: the MSE handshake for
// a key that known accepts (it hangs up on others), then a BitTorrent handshake answered
// naming that key with the reserved bits res, then reads until our side closes.
func serveMSE(c net.Conn, known func(req2 [20]byte) ([20]byte, bool), res wire.Reserved, h fakeMSEHooks) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, plain, err := mse.Sniff(c)
	if err != nil || plain {
		return
	}
	ec, _, skey, ia, err := mse.Accept(sc, known, mse.RC4)
	if err != nil {
		if h.refused != nil {
			h.refused()
		}
		return
	}
	ec = mse.Prepend(ec, ia)
	if h.answered != nil {
		h.answered(skey)
	}
	if !answerHandshake(ec, skey, res) {
		return
	}
	c.SetDeadline(time.Time{})
	buf := make([]byte, 1<<10)
	for {
		if _, err := ec.Read(buf); err != nil {
			if h.closed != nil {
				h.closed(skey)
			}
			return
		}
	}
}
