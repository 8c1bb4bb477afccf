package swarm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
	"torrentfs/tracker"
)

// manyFiles makes an info dictionary of several 16 KiB metadata pieces (names are what
// make it big) while the data stays small.
func manyFiles() map[string]int64 {
	files := map[string]int64{}
	for i := range 400 {
		files[fmt.Sprintf("dir%02d/a-rather-long-file-name-to-fill-the-info-dictionary-%04d.bin", i%7, i)] = int64(100 + i)
	}
	return files
}

func magnetFor(mi *metainfo.MetaInfo, peers ...netip.AddrPort) *metainfo.Magnet {
	m := mi.Magnet()
	for _, p := range peers {
		m.Peers = append(m.Peers, p.String())
	}
	return m
}

func fetch(t *testing.T, c *swarm.Client, m *metainfo.Magnet, d time.Duration, peers ...netip.AddrPort) (*metainfo.MetaInfo, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.FetchMetadata(ctx, m, peers, nil)
}

func TestFetchMetadataFromOurSeeders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]int64
		seeders int
	}{
		{"one piece", multiFile, 1},
		{"several pieces", manyFiles(), 1},
		{"several pieces from two seeders", manyFiles(), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			mi, _ := makeTorrent(t, src, "multi", tc.files, 32<<10, "http://127.0.0.1:1/announce")
			var addrs []netip.AddrPort
			for range tc.seeders {
				c := newClient(t, swarm.ClientConfig{})
				addTorrent(t, c, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
				addrs = append(addrs, c.Addr().(*net.TCPAddr).AddrPort())
			}
			if n := (len(mi.InfoBytes) + wire.MetadataPieceLen - 1) / wire.MetadataPieceLen; tc.seeders > 1 && n < 3 {
				t.Fatalf("metadata is %d pieces, want several", n)
			}
			c := newClient(t, swarm.ClientConfig{})
			m := magnetFor(mi, addrs[0])
			got, err := c.FetchMetadata(context.Background(), m, addrs[1:], []string{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.InfoBytes, mi.InfoBytes) || got.InfoHash != mi.InfoHash {
				t.Fatal("fetched metadata differs from the torrent's")
			}
			if got.Info.Name != "multi" || len(got.Info.Files) != len(mi.Info.Files) || got.Info.TotalLength != mi.Info.TotalLength {
				t.Errorf("info = %q, %d files, %d bytes; want the torrent's", got.Info.Name, len(got.Info.Files), got.Info.TotalLength)
			}
			if got.Announce != "http://127.0.0.1:1/announce" || len(got.AnnounceList) != 1 {
				t.Errorf("announce %q, list %v: want the magnet's tracker", got.Announce, got.AnnounceList)
			}
		})
	}
}

// TestServeMetadataMessages speaks ut_metadata to our seeder by hand: data with total_size
// for each piece, a reject past the end.
func TestServeMetadataMessages(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", manyFiles(), 32<<10)
	sc := newClient(t, swarm.ClientConfig{})
	addTorrent(t, sc, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	var res wire.Reserved
	res.SetExtended(true)
	conn := dialHandshake(t, sc.Addr(), mi.InfoHash, res)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	const ourID = 7
	eh, _ := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: ourID}}.Encode()
	writeMsg(t, conn, wire.Message{ID: wire.Extended, Payload: eh})
	r := wire.NewReader(conn, 0)
	var theirs wire.ExtHandshake
	var err error
	for {
		m := readMsg(t, r)
		if m.ID == wire.Extended && m.ExtID == 0 {
			if theirs, err = wire.ParseExtHandshake(m.Payload); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if theirs.MetadataSize != len(mi.InfoBytes) || theirs.M[wire.ExtMetadata] == 0 {
		t.Fatalf("handshake offers ut_metadata %d, metadata_size %d; want an id and %d", theirs.M[wire.ExtMetadata], theirs.MetadataSize, len(mi.InfoBytes))
	}
	n := (len(mi.InfoBytes) + wire.MetadataPieceLen - 1) / wire.MetadataPieceLen
	var got []byte
	for piece := range n + 2 {
		b, _ := wire.MetadataMessage{Type: wire.MetadataRequest, Piece: piece}.AppendTo(nil)
		writeMsg(t, conn, wire.Message{ID: wire.Extended, ExtID: uint8(theirs.M[wire.ExtMetadata]), Payload: b})
		var mm wire.MetadataMessage
		for {
			m := readMsg(t, r)
			if m.ID != wire.Extended || m.ExtID != ourID {
				continue
			}
			if mm, err = wire.ParseMetadataMessage(m.Payload); err != nil {
				t.Fatal(err)
			}
			break
		}
		if mm.Piece != piece {
			t.Fatalf("asked piece %d, got an answer for %d", piece, mm.Piece)
		}
		if piece >= n {
			if mm.Type != wire.MetadataReject {
				t.Errorf("piece %d of %d: type %d, want a reject", piece, n, mm.Type)
			}
			continue
		}
		if mm.Type != wire.MetadataData || mm.TotalSize != len(mi.InfoBytes) {
			t.Fatalf("piece %d: type %d total_size %d, want data and %d", piece, mm.Type, mm.TotalSize, len(mi.InfoBytes))
		}
		got = append(got, mm.Data...)
	}
	if !bytes.Equal(got, mi.InfoBytes) {
		t.Error("served metadata differs from the torrent's info dictionary")
	}
}

func writeMsg(t *testing.T, c net.Conn, m wire.Message) {
	t.Helper()
	if _, err := c.Write(m.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
}

func readMsg(t *testing.T, r *wire.Reader) wire.Message {
	t.Helper()
	m, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// metaPeer is a fake peer that offers ut_metadata with a claimed size and answers each
// request with what answer returns, once gate lets it.
type metaPeer struct {
	ln     net.Listener
	ih     metainfo.Hash
	size   int
	answer func(piece int) wire.MetadataMessage
	hashes func(h wire.HashRequestFields) []byte // answers hash requests when set (nil: none)
	gate   func()
	conns  atomic.Int32 // connections accepted
	closed atomic.Int32 // connections the engine hung up
	served atomic.Int32 // answers sent
}

func startMetaPeer(t *testing.T, ip string, ih metainfo.Hash, size int, answer func(int) wire.MetadataMessage) *metaPeer {
	t.Helper()
	mp := &metaPeer{ih: ih, size: size, answer: answer, gate: func() {}}
	mp.ln = acceptPeers(t, ip, &mp.conns, mp.serve)
	return mp
}

func (mp *metaPeer) addr() netip.AddrPort { return mp.ln.Addr().(*net.TCPAddr).AddrPort() }

func (mp *metaPeer) serve(c net.Conn) {
	var res wire.Reserved
	res.SetExtended(true)
	if !answerHandshake(c, mp.ih, res) {
		return
	}
	const myID = 3
	eh, _ := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: myID}, MetadataSize: mp.size}.Encode()
	if _, err := c.Write((&wire.Message{ID: wire.Extended, Payload: eh}).AppendTo(nil)); err != nil {
		return
	}
	r := wire.NewReader(c, 0)
	theirID := 0
	for {
		m, err := r.Read()
		if err != nil {
			if hungUp(err) {
				mp.closed.Add(1)
			}
			return
		}
		if m.ID == wire.HashRequest && !m.Keepalive && mp.hashes != nil {
			h, err := wire.ParseHashRequest(m.Payload)
			if err != nil {
				return
			}
			if _, err := c.Write(mp.hashes(h)); err != nil {
				return
			}
			continue
		}
		if m.ID != wire.Extended {
			continue
		}
		if m.ExtID == 0 {
			h, _ := wire.ParseExtHandshake(m.Payload)
			theirID = h.M[wire.ExtMetadata]
			continue
		}
		req, err := wire.ParseMetadataMessage(m.Payload)
		if m.ExtID != myID || err != nil || req.Type != wire.MetadataRequest || theirID == 0 {
			continue
		}
		mp.gate()
		b, _ := mp.answer(req.Piece).AppendTo(nil)
		if _, err := c.Write((&wire.Message{ID: wire.Extended, ExtID: uint8(theirID), Payload: b}).AppendTo(nil)); err != nil {
			return
		}
		mp.served.Add(1)
	}
}

// honest answers with the true metadata.
func honest(info []byte) func(int) wire.MetadataMessage {
	return func(piece int) wire.MetadataMessage {
		off := piece * wire.MetadataPieceLen
		if off >= len(info) {
			return wire.MetadataMessage{Type: wire.MetadataReject, Piece: piece}
		}
		end := min(off+wire.MetadataPieceLen, len(info))
		return wire.MetadataMessage{Type: wire.MetadataData, Piece: piece, TotalSize: len(info), Data: info[off:end]}
	}
}

func TestFetchMetadataRefusesHostilePeers(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", manyFiles(), 32<<10)
	info := mi.InfoBytes
	garbage := func(size int) func(int) wire.MetadataMessage {
		return func(piece int) wire.MetadataMessage {
			n := min(wire.MetadataPieceLen, size-piece*wire.MetadataPieceLen)
			return wire.MetadataMessage{Type: wire.MetadataData, Piece: piece, TotalSize: size, Data: bytes.Repeat([]byte{'x'}, n)}
		}
	}
	for _, tc := range []struct {
		name   string
		size   int
		answer func(int) wire.MetadataMessage
		why    string // in the error of a fetch from this peer alone
	}{
		{"huge metadata_size", 1 << 30, honest(info), "over the"},
		{"wrong data of the right size", len(info), garbage(len(info)), "do not match the info-hash"},
		{"wrong data of another size", len(info) + 100, garbage(len(info) + 100), "do not match the info-hash"},
		{"total_size disagrees", len(info), func(p int) wire.MetadataMessage {
			m := honest(info)(p)
			m.TotalSize++
			return m
		}, "differs from the metadata_size"},
		{"short piece", len(info), func(p int) wire.MetadataMessage {
			m := honest(info)(p)
			m.Data = m.Data[:len(m.Data)-1]
			return m
		}, "bytes, want"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Alone, the liar is dropped and never dialed again (an honest failure is
			// retried after a second or two).
			bad := startMetaPeer(t, "127.0.0.66", mi.InfoHash, tc.size, tc.answer)
			// The fake peers speak plaintext only: without encryption, each dial is one
			// connection to count.
			c := newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionOff})
			_, err := fetch(t, c, magnetFor(mi, bad.addr()), 4*time.Second)
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no peer sent the metadata") {
				t.Fatalf("fetch from a liar alone: %v; want a timeout", err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			if n := bad.conns.Load(); n != 1 {
				t.Errorf("the liar was dialed %d times, want once", n)
			}

			// With an honest peer that answers only once the liar is dropped, the fetch
			// succeeds from it.
			bad = startMetaPeer(t, "127.0.0.67", mi.InfoHash, tc.size, tc.answer)
			good := startMetaPeer(t, "127.0.0.68", mi.InfoHash, len(info), honest(info))
			good.gate = func() {
				deadline := time.Now().Add(10 * time.Second)
				for bad.closed.Load() == 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			c = newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionOff})
			got, err := fetch(t, c, magnetFor(mi, bad.addr(), good.addr()), 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.InfoBytes, info) {
				t.Fatal("fetched metadata differs")
			}
			if bad.closed.Load() != 1 || bad.conns.Load() != 1 {
				t.Errorf("liar: %d connections, %d hung up; want one, hung up", bad.conns.Load(), bad.closed.Load())
			}
		})
	}
}

// Pieces from two peers that do not add up: the fetch cannot tell who lied, so it starts
// over with one peer fetching everything, and gets it right.
func TestFetchMetadataMixedPiecesStartsOver(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", manyFiles(), 32<<10)
	info := mi.InfoBytes
	if n := (len(info) + wire.MetadataPieceLen - 1) / wire.MetadataPieceLen; n < 3 {
		t.Fatalf("metadata is %d pieces, want at least 3", n)
	}
	waitFor := func(n *atomic.Int32) {
		deadline := time.Now().Add(10 * time.Second)
		for n.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The liar answers its first request at once and the rest once the honest peer has
	// answered one; the honest peer answers once the liar has: so the first assembly
	// holds pieces from both.
	var good *metaPeer
	var liarCalls atomic.Int32
	bad := startMetaPeer(t, "127.0.0.69", mi.InfoHash, len(info), func(p int) wire.MetadataMessage {
		if liarCalls.Add(1) > 1 {
			waitFor(&good.served)
		}
		m := honest(info)(p)
		m.Data = bytes.Repeat([]byte{'x'}, len(m.Data))
		return m
	})
	good = startMetaPeer(t, "127.0.0.70", mi.InfoHash, len(info), honest(info))
	good.gate = func() { waitFor(&bad.served) }
	l, hook := logtest.NewNullLogger()
	c := newClient(t, swarm.ClientConfig{Log: logrus.NewEntry(l)})
	got, err := fetch(t, c, magnetFor(mi, bad.addr(), good.addr()), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.InfoBytes, info) {
		t.Fatal("fetched metadata differs")
	}
	startedOver := false
	for _, e := range hook.AllEntries() {
		startedOver = startedOver || strings.Contains(e.Message, "one peer at a time")
	}
	if !startedOver {
		t.Error("the mixed assembly was not started over with one peer")
	}
}

func TestFetchMetadataTimeoutWithoutPeers(t *testing.T) {
	c := newClient(t, swarm.ClientConfig{})
	m := &metainfo.Magnet{InfoHash: metainfo.Hash{1, 2, 3}}
	_, err := fetch(t, c, m, 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "found no peers") {
		t.Fatalf("err = %v; want a timeout that says no peers were found", err)
	}
}

// Our engine fetches the metadata from an aria2c seeder named in the magnet's x.pe, then
// downloads the torrent from it.
func TestMagnetFromAria2Seeder(t *testing.T) {
	src := t.TempDir()
	mi, torrent := makeTorrent(t, src, "multi", manyFiles(), 32<<10)
	_, port := testpeers.Aria2(t, torrent, src, testpeers.Aria2Opts{IP: "127.0.0.11", Seed: true})
	seeder := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.11"), uint16(port))
	link := "magnet:?xt=urn:btih:" + mi.InfoHash.HexString() + "&x.pe=" + seeder.String()
	m, err := metainfo.ParseMagnet(link)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, swarm.ClientConfig{})
	got, err := fetch(t, c, m, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.InfoBytes, mi.InfoBytes) {
		t.Fatal("metadata from aria2c differs from the torrent's")
	}
	out := t.TempDir()
	tr := addTorrent(t, c, got, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{seeder}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}

// aria2c given only a magnet link finds our seeder through the tracker, fetches the
// metadata from it and then every file.
func TestMagnetAria2FromOurSeed(t *testing.T) {
	testutil.Need(t, "aria2c", "opentracker")
	torrent, src, _ := seedAlone(t, manyFiles(), 32<<10)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ip := "127.0.0.23"
	port := testpeers.FreePort(t, ip)
	p := testutil.Start(t, "aria2c",
		"--dir="+out, "--listen-port="+strconv.Itoa(port), "--interface="+ip,
		"--enable-dht=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--seed-time=0", "--bt-metadata-only=false", "--bt-save-metadata=false", "--follow-torrent=mem",
		"--file-allocation=none", "--summary-interval=0", "--console-log-level=notice",
		"--bt-tracker-connect-timeout=5", "--bt-tracker-interval=2", "--bt-stop-timeout=0",
		"--allow-overwrite=true", "--auto-file-renaming=false",
		"--stop-with-process="+strconv.Itoa(os.Getpid()),
		mi.Magnet().String())
	if err := p.Wait(t, 90*time.Second); err != nil {
		t.Fatalf("aria2c: %v", err)
	}
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}

// The magnet's tracker is the only way to the seeder.
func TestFetchMetadataViaTracker(t *testing.T) {
	testutil.Need(t, "opentracker")
	torrent, _, _ := seedAlone(t, multiFile, 64<<10)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	m := mi.Magnet()
	if len(m.Trackers) != 1 || len(m.Peers) != 0 {
		t.Fatalf("magnet %s: want one tracker and no peers", m)
	}
	// The seeder announces on its own goroutine: wait until the tracker knows it, so the
	// fetch's first announce finds it.
	testutil.WaitFor(t, 10*time.Second, "the seeder's announce", func() bool {
		st, err := tracker.Scrape(context.Background(), m.Trackers[0], [][20]byte{mi.InfoHash})
		return err == nil && st[mi.InfoHash].Complete > 0
	})
	c := newClient(t, swarm.ClientConfig{})
	got, err := fetch(t, c, m, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.InfoBytes, mi.InfoBytes) || got.Announce != m.Trackers[0] {
		t.Fatal("fetched metadata or tracker differs from the torrent's")
	}
}
