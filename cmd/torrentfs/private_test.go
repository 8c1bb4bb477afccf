package main

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"torrentfs/internal/netns"
	"torrentfs/internal/testutil"
	"torrentfs/lsd"
	"torrentfs/metainfo"
)

// krpcWitness is a DHT node that answers every query as a well-behaved node with nothing to
// tell would, and records the info-hashes it is asked about (get_peers, announce_peer).
type krpcWitness struct {
	conn *net.UDPConn
	mu   sync.Mutex
	seen map[string]int // info-hash -> queries about it
}

func newKRPCWitness(t *testing.T, ip netip.Addr) *krpcWitness {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	w := &krpcWitness{conn: conn, seen: map[string]int{}}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		id := string(make([]byte, 20))
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var q struct {
				T string `bencode:"t"`
				Y string `bencode:"y"`
				Q string `bencode:"q"`
				A struct {
					InfoHash string `bencode:"info_hash"`
				} `bencode:"a"`
			}
			if bencode.Unmarshal(buf[:n], &q) != nil || q.Y != "q" {
				continue
			}
			if q.A.InfoHash != "" {
				w.mu.Lock()
				w.seen[q.A.InfoHash]++
				w.mu.Unlock()
			}
			r := map[string]any{"id": id}
			if q.Q == "get_peers" || q.Q == "find_node" {
				r["nodes"] = ""
				r["token"] = "witness"
			}
			b, _ := bencode.Marshal(map[string]any{"t": q.T, "y": "r", "r": r})
			conn.WriteToUDPAddrPort(b, from)
		}
	}()
	return w
}

func (w *krpcWitness) asked(ih metainfo.Hash) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[string(ih[:])]
}

// A private torrent (BEP 27) is never looked up or announced in the DHT nor announced by
// LSD, while a public one seeded beside it is: a DHT node and an LSD listener of the test
// watch both.
func TestPrivateTorrentStaysOffDHTAndLSD(t *testing.T) {
	public, data, _ := fixture(t, "pub", tfile{"a.bin", 300 << 10})
	private := filepath.Join(t.TempDir(), "priv.torrent")
	if out, err := exec.Command(torrentfsBin(t), "create", "--private", "-o", private, filepath.Join(data, "pub")).CombinedOutput(); err != nil {
		t.Fatalf("create --private: %v\n%s", err, out)
	}
	pubMI, _ := metainfo.Load(public)
	privMI, _ := metainfo.Load(private)
	if !privMI.Info.Private || pubMI.Info.Private {
		t.Fatal("fixtures: want one private and one public torrent")
	}

	nt := netns.New(t, 1)
	h := nt.Hosts[0]
	witness := newKRPCWitness(t, nt.BridgeIP)
	boot := witness.conn.LocalAddr().String()
	lsdWatch, err := lsd.New(lsd.Config{Interfaces: []string{nt.Bridge}, Log: testutil.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lsdWatch.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var mu sync.Mutex
	heard := map[metainfo.Hash]int{}
	for _, ih := range []metainfo.Hash{pubMI.InfoHash, privMI.InfoHash} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lsdWatch.FindPeers(ctx, ih, 0, func(ps []netip.AddrPort) {
				mu.Lock()
				heard[ih] += len(ps)
				mu.Unlock()
			})
		}()
	}

	for i, torrent := range []string{private, public} {
		port := []string{"6881", "6882"}[i]
		argv := h.Command(torrentfsBin(t), "seed", "--no-port-map", "--no-trackers", "--listen", h.IP.String()+":"+port,
			"--dht-bootstrap", boot, "--dht-state", "none", "--data", data, torrent)
		testutil.Start(t, argv[0], argv[1:]...)
	}
	testutil.WaitFor(t, 60*time.Second, "the public torrent in the DHT and on LSD", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return witness.asked(pubMI.InfoHash) > 0 && heard[pubMI.InfoHash] > 0
	})
	// The private seeder started first; give it as long again as the public one took.
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if n := witness.asked(privMI.InfoHash); n > 0 {
		t.Errorf("the DHT was asked about the private torrent %d times", n)
	}
	if n := heard[privMI.InfoHash]; n > 0 {
		t.Errorf("the private torrent was announced by LSD (%d peers heard)", n)
	}
}
