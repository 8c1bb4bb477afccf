package tracker

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// startOpentracker runs Debian's opentracker on loopback, serving only hashes, and returns
// its HTTP and UDP announce URLs.
func startOpentracker(t *testing.T, hashes ...[20]byte) (httpURL, udpURL string) {
	t.Helper()
	bin, err := exec.LookPath("opentracker")
	if err != nil {
		t.Skip("opentracker not installed (apt-get install opentracker)")
	}
	if os.Geteuid() != 0 {
		// It chroots into -d, which only root may do; the whitelist path assumes the chroot.
		t.Skip("opentracker test needs root")
	}
	dir := t.TempDir()
	var wl strings.Builder
	for _, h := range append(hashes, clientOpentrackerProbe) {
		wl.WriteString(hex.EncodeToString(h[:]) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "whitelist"), []byte(wl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tcpPort, udpPort := clientFreePorts(t)
	p := testutil.Start(t, bin, "-i", "127.0.0.1", "-p", fmt.Sprint(tcpPort), "-P", fmt.Sprint(udpPort),
		"-d", dir, "-w", "/whitelist")
	httpURL = fmt.Sprintf("http://127.0.0.1:%d/announce", tcpPort)
	udpURL = fmt.Sprintf("udp://127.0.0.1:%d", udpPort)
	// opentracker loads its whitelist in a thread of its own, after it starts answering: it
	// is ready once a whitelisted probe hash is accepted.
	probe := AnnounceRequest{InfoHash: clientOpentrackerProbe, Port: 1, NumWant: 0}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := Announce(ctx, httpURL, probe)
		cancel()
		if err == nil {
			return httpURL, udpURL
		}
		if p.Exited() {
			t.Fatalf("opentracker exited: %s", p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("opentracker not ready: %v\n%s", err, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientOpentrackerProbe is whitelisted in every test tracker, only to see it is ready.
var clientOpentrackerProbe = clientTestHash(0xf0)

// clientFreePorts finds a free TCP and a free UDP port on 127.0.0.1. Another process could
// take them before opentracker binds; on loopback in a test jail that does not happen.
func clientFreePorts(t *testing.T) (tcp, udp int) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return l.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port
}

func clientHasPeer(peers []Peer, port uint16) bool {
	return slices.ContainsFunc(peers, func(p Peer) bool {
		return p.Addr == netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	})
}

func TestOpentracker(t *testing.T) {
	hashHTTP, hashUDP, other := clientTestHash(0x10), clientTestHash(0x20), clientTestHash(0x30)
	httpURL, udpURL := startOpentracker(t, hashHTTP, hashUDP)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name, url string
		hash      [20]byte
	}{
		{"http", httpURL, hashHTTP},
		{"udp", udpURL, hashUDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leech, err := NewClient(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer leech.Close()
			seed, err := NewClient(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer seed.Close()
			leechReq := AnnounceRequest{InfoHash: tc.hash, PeerID: clientTestHash(1), Port: 1111, Left: 100,
				Event: EventStarted, NumWant: 50, Key: 1}
			seedReq := AnnounceRequest{InfoHash: tc.hash, PeerID: clientTestHash(2), Port: 2222, Left: 0,
				Event: EventStarted, NumWant: 50, Key: 2}

			if _, err := leech.Announce(ctx, leechReq); err != nil {
				t.Fatal(err)
			}
			resp, err := seed.Announce(ctx, seedReq)
			if err != nil {
				t.Fatal(err)
			}
			if !clientHasPeer(resp.Peers, 1111) {
				t.Errorf("seeder not told about the leecher: %v", resp.Peers)
			}
			if resp.Interval <= 0 || resp.Complete != 1 || resp.Incomplete != 1 {
				t.Errorf("reply %+v, want an interval, 1 seeder, 1 leecher", resp)
			}
			leechReq.Event = EventNone
			resp, err = leech.Announce(ctx, leechReq)
			if err != nil {
				t.Fatal(err)
			}
			if !clientHasPeer(resp.Peers, 2222) {
				t.Errorf("leecher not told about the seeder: %v", resp.Peers)
			}

			stats, err := leech.Scrape(ctx, [][20]byte{tc.hash, other})
			if err != nil {
				t.Fatal(err)
			}
			if got := stats[tc.hash]; got.Complete != 1 || got.Incomplete != 1 {
				t.Errorf("scrape %+v, want 1 seeder, 1 leecher", got)
			}

			// The leecher leaves: the tracker forgets it.
			leechReq.Event = EventStopped
			if _, err := leech.Announce(ctx, leechReq); err != nil {
				t.Fatal(err)
			}
			stats, err = seed.Scrape(ctx, [][20]byte{tc.hash})
			if err != nil {
				t.Fatal(err)
			}
			if got := stats[tc.hash]; got.Complete != 1 || got.Incomplete != 0 {
				t.Errorf("scrape after stopped %+v, want 1 seeder, 0 leechers", got)
			}
		})
	}

	t.Run("not whitelisted", func(t *testing.T) {
		_, err := Announce(ctx, httpURL, AnnounceRequest{InfoHash: other, Port: 1})
		if err == nil || !strings.Contains(err.Error(), "tracker failure") {
			t.Errorf("err = %v, want the tracker's failure reason", err)
		}
		_, err = Announce(ctx, udpURL, AnnounceRequest{InfoHash: other, Port: 1})
		if err == nil || !strings.Contains(err.Error(), "not served") {
			t.Errorf("UDP: err = %v, want the empty answer explained", err)
		}
	})
}

// Two announcers find each other through opentracker; the first tier is a dead UDP tracker.
func TestOpentrackerAnnouncers(t *testing.T) {
	hash := clientTestHash(0x40)
	httpURL, udpURL := startOpentracker(t, hash)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "udp://" + pc.LocalAddr().String()
	pc.Close()

	newPeer := func(port uint16, left int64) (*Announcer, chan []Peer) {
		peers := make(chan []Peer, 10)
		log, _ := announceTestLog()
		a := NewAnnouncer(AnnouncerConfig{
			Tiers:    [][]string{{dead}, {udpURL}, {httpURL}},
			InfoHash: hash, PeerID: clientTestHash(byte(port)), Port: port, NumWant: 50,
			Stats:   func() (int64, int64, int64) { return 0, 0, left },
			OnPeers: func(p []Peer) { peers <- p },
			Log:     log,
		})
		return a, peers
	}
	waitPeer := func(peers chan []Peer, port uint16) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case p := <-peers:
				if clientHasPeer(p, port) {
					return
				}
			case <-deadline:
				t.Fatalf("never told about peer on port %d", port)
			}
		}
	}

	leech, leechPeers := newPeer(1111, 100)
	leechClock, stopLeech := startAnnouncer(t, leech)
	due := leechClock.waitAnyTimer(t)
	seed, seedPeers := newPeer(2222, 0)
	startAnnouncer(t, seed)
	waitPeer(seedPeers, 1111)

	// The leecher hears of the seeder at its next announce.
	leechClock.Advance(due.Sub(leechClock.Now()))
	waitPeer(leechPeers, 2222)
	st := leech.Status()
	if st[0].URL != dead || st[0].LastError == "" || st[1].URL != udpURL || st[1].LastError != "" {
		t.Errorf("status %+v", st)
	}

	// Stopping sends stopped: the tracker forgets the leecher.
	stopLeech()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stats, err := Scrape(ctx, httpURL, [][20]byte{hash})
	if err != nil {
		t.Fatal(err)
	}
	if got := stats[hash]; got.Complete != 1 || got.Incomplete != 0 {
		t.Errorf("scrape after the leecher stopped: %+v, want 1 seeder, 0 leechers", got)
	}
}
