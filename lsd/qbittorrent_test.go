package lsd

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/internal/qbit"
	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// TestQBittorrentInterop runs qbittorrent-nox with LSD on in a test host, seeding one
// torrent and downloading another, and our Service on the bridge: we hear its announces,
// and it hears ours, which it shows by connecting to our port for the torrent it lacks.
func TestQBittorrentInterop(t *testing.T) {
	needRoot(t)
	testutil.Need(t, "qbittorrent-nox")
	t.Parallel()
	nt := netns.New(t, 1)
	h := nt.Hosts[0]
	bridge, err := net.InterfaceByName(nt.Bridge)
	if err != nil {
		t.Fatal(err)
	}

	data := t.TempDir()
	testpeers.WriteFiles(t, data, map[string]int64{"seeded/a.bin": 1 << 20, "wanted/b.bin": 1 << 20}, 14)
	seeded := makeTorrent(t, filepath.Join(data, "seeded"))
	wanted := makeTorrent(t, filepath.Join(data, "wanted"))
	if err := os.RemoveAll(filepath.Join(data, "wanted")); err != nil {
		t.Fatal(err)
	}

	// Where qBittorrent will connect once it hears of us.
	ln, err := net.Listen("tcp", netip.AddrPortFrom(nt.BridgeIP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ourPort := uint16(ln.Addr().(*net.TCPAddr).Port)

	// A bare socket on the group, to see qBittorrent's LSD at work before we announce:
	// libtorrent opens its LSD socket some time after it starts, and an announce of ours
	// sent before that is lost until our next one, 5 minutes on.
	snoop, err := openSocket(bridge, netip.MustParseAddrPort(DefaultGroup4))
	if err != nil {
		t.Fatal(err)
	}
	defer snoop.Close()
	var snooped sync.Map // info-hash -> true, announced by qBittorrent
	go func() {
		buf := make([]byte, maxMessage+1)
		for {
			n, from, err := snoop.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m, err := parseMessage(buf[:n])
			if err != nil || from.Addr().Unmap() != h.IP {
				continue
			}
			for _, ih := range m.infohashes {
				snooped.Store(ih, true)
			}
		}
	}()

	s, err := New(Config{Port: ourPort, Interfaces: []string{nt.Bridge}, Log: testutil.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	q := testpeers.StartQBittorrentIn(t, h, qbit.Profile{LSD: true})
	api, btPort := q.API, uint16(q.Port)
	for _, tr := range []string{seeded.path, wanted.path} {
		if err := qbit.Add(api, tr, data); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	testutil.WaitFor(t, 2*time.Minute, "qBittorrent to announce both torrents by LSD", func() bool {
		_, a := snooped.Load(seeded.ih)
		_, b := snooped.Load(wanted.ih)
		return a && b
	})
	t.Logf("qBittorrent announced after %v", time.Since(start))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var peers peerLog
	for _, ih := range [][20]byte{seeded.ih, wanted.ih} {
		wg.Add(1)
		go func() { defer wg.Done(); s.FindPeers(ctx, ih, 0, peers.add) }()
	}
	qb := netip.AddrPortFrom(h.IP, btPort)
	testutil.WaitFor(t, 30*time.Second, "our Service to report qBittorrent", func() bool { return peers.count(qb) == 2 })

	// qBittorrent connects to the port we announced, handshaking for one of the torrents:
	// with DHT, PEX and trackers off, our LSD announce is the only way it knows the port.
	// Which torrent it connects for first is its choice.
	type conn struct {
		from netip.Addr
		hs   []byte
		err  error
	}
	got := make(chan conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- conn{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		hs := make([]byte, 48)
		_, err = io.ReadFull(c, hs)
		got <- conn{from: c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(), hs: hs, err: err}
	}()
	select {
	case c := <-got:
		if c.err != nil {
			t.Fatalf("qBittorrent's connection: %v", c.err)
		}
		ok := bytes.HasPrefix(c.hs, []byte("\x13BitTorrent protocol")) &&
			(bytes.Equal(c.hs[28:48], wanted.ih[:]) || bytes.Equal(c.hs[28:48], seeded.ih[:]))
		if c.from != h.IP || !ok {
			t.Errorf("connection from %s with handshake %q, want one from %s for %x or %x", c.from, c.hs, h.IP, wanted.ih, seeded.ih)
		}
	case <-time.After(time.Minute):
		t.Fatal("qBittorrent did not connect to the port we announced")
	}
}

type torrentFile struct {
	path string
	ih   [20]byte
}

func makeTorrent(t *testing.T, dir string) torrentFile {
	t.Helper()
	mi, raw, err := metainfo.Create(context.Background(), dir, metainfo.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := dir + ".torrent"
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return torrentFile{path: p, ih: mi.InfoHash}
}
