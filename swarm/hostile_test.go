package swarm_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// A fake peer stands in for what no real client does: corrupt data, malformed or oversized
// messages, request floods, vanishing mid-piece. It accepts one connection at a time from
// the engine under test, answers the handshake with have-all and unchoke, then lets the
// scenario drive the connection.

type fakePeer struct {
	ln       net.Listener
	mi       *metainfo.MetaInfo
	scenario func(fp *fakePeer, c net.Conn, r *wire.Reader)
	conns    atomic.Int32 // connections accepted
	closed   atomic.Int32 // connections the engine closed (EOF or reset seen)
	served   atomic.Int64 // blocks sent
}

func startFakePeer(t *testing.T, mi *metainfo.MetaInfo, scenario func(fp *fakePeer, c net.Conn, r *wire.Reader)) *fakePeer {
	t.Helper()
	fp := &fakePeer{mi: mi, scenario: scenario}
	// Its own address: the engine bans by IP, and the good seeder is on 127.0.0.1.
	fp.ln = acceptPeers(t, "127.0.0.66", &fp.conns, fp.serve)
	return fp
}

func (fp *fakePeer) addr() netip.AddrPort {
	return fp.ln.Addr().(*net.TCPAddr).AddrPort()
}

func (fp *fakePeer) serve(c net.Conn) {
	var res wire.Reserved
	res.SetFast(true)
	if !answerHandshake(c, fp.mi.SwarmHash(), res) {
		return
	}
	var out []byte
	out = (&wire.Message{ID: wire.HaveAll}).AppendTo(out)
	out = (&wire.Message{ID: wire.Unchoke}).AppendTo(out)
	if _, err := c.Write(out); err != nil {
		return
	}
	fp.scenario(fp, c, wire.NewReader(c, 0))
}

// drain reads until the engine closes the connection and records that it did.
func (fp *fakePeer) drain(r *wire.Reader) {
	for {
		if _, err := r.Read(); err != nil {
			if hungUp(err) {
				fp.closed.Add(1)
			}
			return
		}
	}
}

// serveBlocks answers requests with what block returns (nil: stop and return).
func (fp *fakePeer) serveBlocks(c net.Conn, r *wire.Reader, block func(m wire.Message) []byte) {
	for {
		m, err := r.Read()
		if err != nil {
			fp.closed.Add(1)
			return
		}
		if m.ID != wire.Request || m.Keepalive {
			continue
		}
		data := block(m)
		if data == nil {
			return
		}
		frame := (&wire.Message{ID: wire.Piece, Index: m.Index, Begin: m.Begin, Block: data}).AppendTo(nil)
		if _, err := c.Write(frame); err != nil {
			fp.closed.Add(1)
			return
		}
		fp.served.Add(1)
	}
}

// swarmWithGoodSeeder returns a torrent, its data, and our engine seeding it.
func swarmWithGoodSeeder(t *testing.T) (*metainfo.MetaInfo, string, netip.AddrPort) {
	t.Helper()
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	c := newClient(t, swarm.ClientConfig{})
	addTorrent(t, c, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	return mi, src, c.Addr().(*net.TCPAddr).AddrPort()
}

func TestCorruptPeerIsBannedAndDownloadCompletes(t *testing.T) {
	mi, src, good := swarmWithGoodSeeder(t)
	bad := startFakePeer(t, mi, func(fp *fakePeer, c net.Conn, r *wire.Reader) {
		fp.serveBlocks(c, r, func(m wire.Message) []byte {
			b := make([]byte, m.Length)
			for i := range b {
				b[i] = 0xAA
			}
			return b
		})
	})
	c := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	// The bad peer first, so it gets requests before the good seeder is even connected.
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{bad.addr()}})
	testutil.WaitFor(t, 10*time.Second, "bad peer got no requests", func() bool { return bad.served.Load() > 0 })
	tr.AddPeers(good)
	waitComplete(t, tr, 30*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if s := tr.Stats(); s.Banned != 1 {
		t.Errorf("banned %d peers, want the corrupt one", s.Banned)
	}
}

func TestVanishingPeerBlocksAreRefetched(t *testing.T) {
	mi, src, good := swarmWithGoodSeeder(t)
	// Serves three blocks, then vanishes while the engine waits for the rest of its
	// requests; every later connection does the same.
	flaky := startFakePeer(t, mi, func(fp *fakePeer, c net.Conn, r *wire.Reader) {
		data := readTorrentData(t, mi, src)
		n := 0
		fp.serveBlocks(c, r, func(m wire.Message) []byte {
			if n++; n > 3 {
				return nil
			}
			off := mi.Info.PieceOffset(int(m.Index)) + int64(m.Begin)
			return data[off : off+int64(m.Length)]
		})
	})
	c := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{flaky.addr()}})
	testutil.WaitFor(t, 10*time.Second, "flaky peer served nothing", func() bool { return flaky.served.Load() >= 3 })
	tr.AddPeers(good)
	waitComplete(t, tr, 30*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}

// readTorrentData concatenates the torrent's files as the byte stream pieces cover.
func readTorrentData(t *testing.T, mi *metainfo.MetaInfo, dir string) []byte {
	t.Helper()
	var all []byte
	for _, f := range mi.Info.Files {
		p := filepath.Join(append([]string{dir, mi.Info.Name}, f.Path...)...)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestMalformedMessagesDisconnect(t *testing.T) {
	mi, _, _ := swarmWithGoodSeeder(t)
	frame := func(body ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	cases := []struct {
		name string
		send []byte
	}{
		{"oversized length", binary.BigEndian.AppendUint32(nil, 0xFFFFFF00)},
		{"have with 3 bytes", frame(byte(wire.Have), 0, 0, 1)},
		{"request with 11 bytes", frame(byte(wire.Request), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"have beyond the last piece", frame(byte(wire.Have), 0xff, 0xff, 0xff, 0xff)},
		{"bitfield of the wrong size", frame(byte(wire.Bitfield), 0xff)},
		{"request beyond the piece", frame(append([]byte{byte(wire.Request)}, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 0), 0), 1<<20)...)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fp := startFakePeer(t, mi, func(fp *fakePeer, c net.Conn, r *wire.Reader) {
				if _, err := c.Write(tc.send); err != nil {
					fp.closed.Add(1)
					return
				}
				fp.drain(r)
			})
			c := newClient(t, swarm.ClientConfig{})
			addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{fp.addr()}})
			testutil.WaitFor(t, 10*time.Second, "engine did not disconnect", func() bool { return fp.closed.Load() > 0 })
		})
	}
}

func TestRequestFloodIsBounded(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 32<<10)
	c := newClient(t, swarm.ClientConfig{})
	addTorrent(t, c, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})

	var res wire.Reserved
	res.SetFast(true)
	conn := dialHandshake(t, c.Addr(), mi.InfoHash, res)
	conn.Write((&wire.Message{ID: wire.Interested}).AppendTo(nil))
	// Read nothing back for a while (so uploads pile up at our end if unbounded), while
	// sending far more requests than any queue should take.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var buf []byte
	for i := range 200_000 {
		p := i % mi.Info.NumPieces()
		buf = (&wire.Message{ID: wire.Request, Index: uint32(p), Begin: 0, Length: uint32(mi.Info.BlockSizeAt(p, 0))}).AppendTo(buf[:0])
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(buf); err != nil {
			break // disconnected for flooding: fine
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapInuse) - int64(before); grown > 64<<20 {
		t.Errorf("heap grew by %d MiB under a request flood", grown>>20)
	}
	// The engine must hang up on the flood.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("engine kept serving a peer that flooded it with requests")
	}
}

func TestRestartResumesFromDisk(t *testing.T) {
	mi, src, good := swarmWithGoodSeeder(t)
	out := t.TempDir()
	// A slow first run, stopped a third of the way.
	c1 := newClient(t, swarm.ClientConfig{DownloadLimit: 1 << 20})
	tr1 := addTorrent(t, c1, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{good}})
	testutil.WaitFor(t, 20*time.Second, "first run made no progress", func() bool {
		s := tr1.Stats()
		return s.PiecesDone*3 >= s.Pieces
	})
	tr1.Close()
	c1.Close()
	first := tr1.Stats().BytesDone

	c2 := newClient(t, swarm.ClientConfig{})
	tr2 := addTorrent(t, c2, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{good}})
	if got := tr2.Stats().BytesDone; got < first {
		t.Fatalf("second run found %d bytes on disk, the first had verified %d", got, first)
	}
	waitComplete(t, tr2, 30*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if got, want := tr2.Stats().Downloaded, mi.Info.TotalLength-first; got > want {
		t.Errorf("second run downloaded %d bytes, only %d were missing", got, want)
	}
}
