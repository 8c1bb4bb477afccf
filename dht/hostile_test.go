package dht

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHostileFlood: one source floods queries; the node still answers another source and
// keeps its memory bounded.
func TestHostileFlood(t *testing.T) {
	n := startNode(t, "127.0.1.1", nil)
	to := addrOf(n)
	flooder := newRawPeer(t, "127.0.1.2")
	good := newRawPeer(t, "127.0.1.3")

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20000 {
			id := randomID()
			m := msg{T: "ff", Y: "q", Q: "get_peers", A: &msgArgs{ID: string(id[:]), InfoHash: string(id[:])}}
			if i%2 == 0 {
				m = msg{T: "fp", Y: "q", Q: "ping", A: &msgArgs{ID: string(id[:])}}
			}
			b, _ := encodeMsg(&m)
			flooder.conn.WriteToUDPAddrPort(b, to)
		}
	}()
	good.mustQuery(to, "ping", &msgArgs{})
	wg.Wait()
	good.mustQuery(to, "ping", &msgArgs{})
	s := n.Stats()
	if s.RateLimited == 0 {
		t.Fatalf("nothing was rate limited: %+v", s)
	}
	if s.Pending > n.cfg.MaxPending || s.Nodes > 1 {
		t.Fatalf("state grew: %+v", s)
	}
}

// TestHostileGarbage: garbage, oversized packets and unsolicited responses are dropped.
func TestHostileGarbage(t *testing.T) {
	n := startNode(t, "127.0.1.10", nil)
	to := addrOf(n)
	h := newRawPeer(t, "127.0.1.11")
	junk := [][]byte{
		nil, []byte("d"), []byte("i1e"), []byte(strings.Repeat("l", 5000)),
		[]byte("d1:t2:aa1:y1:q1:q4:pinge"),
		[]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe" + strings.Repeat("x", 3000)),
	}
	for range 200 {
		b := make([]byte, 1+len(junk)%700)
		rand.Read(b)
		junk = append(junk, b)
	}
	for _, b := range junk {
		h.sendRaw(to, b)
	}
	for i := range 100 {
		id := randomID()
		h.send(to, &msg{T: string(binary.BigEndian.AppendUint16(nil, uint16(i))), Y: "r", R: &msgReply{ID: string(id[:]), Nodes: strings.Repeat("x", 26)}})
		h.send(to, &msg{T: "zz", Y: "e", E: &krpcError{Code: errGeneric, Msg: "boo"}})
	}
	good := newRawPeer(t, "127.0.1.12")
	good.mustQuery(to, "ping", &msgArgs{})
	waitFor(t, "the junk to be counted", 10*time.Second, func() bool {
		s := n.Stats()
		return s.Malformed > 0 && s.Unsolicited > 0
	})
	if s := n.Stats(); s.Nodes != 0 || s.RepliesIn != 0 {
		t.Fatalf("unsolicited responses got in: %+v", s)
	}
}

// TestHostileAnnounces: forged tokens are refused and the peer store stays bounded.
func TestHostileAnnounces(t *testing.T) {
	n := startNode(t, "127.0.1.20", func(c *Config) {
		c.MaxTorrents, c.MaxPeersPerTorrent = 5, 3
		c.QueriesPerSecondPerIP, c.QueriesPerSecond = 1e6, 1e6
	})
	to := addrOf(n)
	h := newRawPeer(t, "127.0.1.21")
	ih := randomID()
	m := h.mustQuery(to, "announce_peer", &msgArgs{InfoHash: string(ih[:]), Port: 1, Token: "forged!!"})
	if m.Y != "e" || m.E.Code != errProtocol {
		t.Fatalf("forged token: %+v %+v", m.R, m.E)
	}
	// A token given to another IP is refused too.
	other := newRawPeer(t, "127.0.1.22")
	tok := other.mustQuery(to, "get_peers", &msgArgs{InfoHash: string(ih[:])}).R.Token
	if m := h.mustQuery(to, "announce_peer", &msgArgs{InfoHash: string(ih[:]), Port: 1, Token: tok}); m.Y != "e" {
		t.Fatal("a token for another IP was accepted")
	}
	if s := n.Stats(); s.Peers != 0 {
		t.Fatalf("%d peers stored from forged announces", s.Peers)
	}
	tok = h.mustQuery(to, "get_peers", &msgArgs{InfoHash: string(ih[:])}).R.Token
	for i := range 40 {
		target := randomID()
		for p := range 10 {
			if m := h.mustQuery(to, "announce_peer", &msgArgs{InfoHash: string(target[:]), Port: 1000 + p, Token: tok}); m.Y != "r" {
				t.Fatalf("announce %d/%d: %+v", i, p, m.E)
			}
		}
	}
	if s := n.Stats(); s.Torrents > 5 || s.Peers > 15 || s.Peers == 0 {
		t.Fatalf("store: %d torrents, %d peers", s.Torrents, s.Peers)
	}
}

// TestHostileReplies: a node we query answers with oversized lists; we take a bounded part.
func TestHostileReplies(t *testing.T) {
	n := startNode(t, "127.0.1.30", nil)
	h := newRawPeer(t, "127.0.1.31")
	var mu sync.Mutex
	getPeers := 0
	h.serve(func(m msg, from netip.AddrPort) *msg {
		r := &msgReply{ID: string(h.id[:])}
		if m.Q == "get_peers" {
			mu.Lock()
			getPeers++
			round := getPeers
			mu.Unlock()
			switch round % 3 {
			case 1: // 200 values: more than we take from one answer
				for i := range 200 {
					r.Values = append(r.Values, string(appendCompactAddr(nil, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 9, byte(i >> 8), byte(i)}), 1))))
				}
			case 2: // 70 nodes on unused loopback addresses
				var b []byte
				for i := range 70 {
					id := randomID()
					b = append(b, id[:]...)
					b = appendCompactAddr(b, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 8, 0, byte(i + 1)}), 9))
				}
				r.Nodes = string(b)
			case 0: // too big for a datagram we accept
				r.Token = strings.Repeat("t", 3000)
			}
		}
		return &msg{T: m.T, Y: "r", R: r}
	})
	n.AddNode(h.addr())
	waitFor(t, "the node to add the hostile peer", 10*time.Second, func() bool { return n.Stats().GoodNodes == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := newPeerSink()
	done := make(chan struct{})
	go func() {
		n.FindPeers(ctx, randomID(), 0, sink.found)
		close(done)
	}()
	waitFor(t, "three lookup rounds", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return getPeers >= 4
	})
	if got := len(sink.snapshot()); got != maxValuesIn {
		t.Fatalf("took %d peers from one answer, want %d", got, maxValuesIn)
	}
	s := n.Stats()
	if s.Malformed == 0 || s.Nodes > 1+maxNodesIn {
		t.Fatalf("stats %+v", s)
	}
	good := newRawPeer(t, "127.0.1.32")
	good.mustQuery(addrOf(n), "ping", &msgArgs{})
	cancel()
	<-done
}
