package swarm_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// A read of a hybrid torrent returns once the blocks under it are verified against their
// BEP 52 hashes, long before its 4 MiB piece could be complete from a seeder sending 1 MiB/s.
func TestReadReleasedByVerifiedBlocks(t *testing.T) {
	const piece = filmPiece
	src, mi, want := filmHybrid(t, 7)
	tr := slowV2Seeder(t, mi, src)
	checkReleasedReads(t, tr, want, piece, []int64{2*piece - 5000, piece + piece/2 + 12345, 2*piece + 100<<10})
}

// slowV2Seeder seeds mi from src at 1 MiB/s and returns a torrent of it, with no background
// download, connected to the seeder over v2.
func slowV2Seeder(t *testing.T, mi *metainfo.MetaInfo, src string) *swarm.Torrent {
	t.Helper()
	seeder := newClient(t, swarm.ClientConfig{UploadLimit: 1 << 20})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	c := newClient(t, swarm.ClientConfig{ListenAddr: "127.0.0.2:0"})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{},
		NoBackground: true, CacheBytes: 64 << 20, Peers: []netip.AddrPort{seeder.Addr().(*net.TCPAddr).AddrPort()}})
	testutil.WaitFor(t, 10*time.Second, "a v2 connection", func() bool { return tr.NumV2Peers() == 1 })
	return tr
}

// filmPiece is the piece size of filmHybrid's torrents.
const filmPiece = 4 << 20

// filmHybrid writes a torrent directory film (film.bin of three 4 MiB pieces, content from
// seed, and a small notes.txt) under a new directory src and makes a hybrid of it; want is
// film.bin's content.
func filmHybrid(t *testing.T, seed uint64) (src string, mi *metainfo.MetaInfo, want []byte) {
	t.Helper()
	src = t.TempDir()
	root := filepath.Join(src, "film")
	testpeers.WriteFiles(t, root, map[string]int64{"film.bin": 3 * filmPiece, "notes.txt": 1000}, seed)
	mi, _, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{PieceLength: filmPiece, NoDate: true, Version: metainfo.Hybrid})
	if err != nil {
		t.Fatal(err)
	}
	if want, err = os.ReadFile(filepath.Join(root, "film.bin")); err != nil {
		t.Fatal(err)
	}
	return src, mi, want
}

// checkReleasedReads reads 16 KiB of tr at each offset (of its first file, whose bytes are
// want, in pieces of pieceLen), checks the bytes, and checks that each read returned while
// its piece was incomplete and that the torrent counted at least two block releases.
func checkReleasedReads(t *testing.T, tr *swarm.Torrent, want []byte, pieceLen int64, offs []int64) {
	t.Helper()
	for _, off := range offs {
		buf := make([]byte, 16<<10)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		n, err := tr.ReadAt(ctx, buf, off)
		cancel()
		p := int(off / pieceLen)
		complete := tr.HasPiece(p)
		if err != nil || n != len(buf) {
			t.Fatalf("read at %d: %d, %v", off, n, err)
		}
		if !bytes.Equal(buf, want[off:off+int64(n)]) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
		if complete {
			t.Errorf("read at %d returned after its piece %d was complete: not released by blocks", off, p)
		}
	}
	// The stats snapshot is refreshed every second.
	testutil.WaitFor(t, 5*time.Second, "two reads counted as released by blocks", func() bool { return tr.Stats().BlockReleases >= 2 })
}

// A fake v2 peer gives correct block hashes but one corrupted block of a piece under a
// read, and nothing else of that piece: the block fails its BEP 52 hash on its own (the
// piece never completes, so no SHA-1 could have caught it), the fake peer is banned, and
// the read completes with the right bytes from an honest peer that joins later, which is
// not banned. (The bad block stays in the piece until the piece fails its SHA-1, and the
// piece is then fetched again whole: see checkBlock.)
func TestBadBlockBansItsSenderOnly(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeHybrid(t, src, 64<<10)
	const piece, begin = 2, 16 << 10 // big.bin (the first file) is pieces 0 to 5
	off := mi.Info.PieceOffset(piece) + begin
	data, err := os.ReadFile(filepath.Join(src, "hyb", "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := data[off : off+metainfo.BlockSize]
	big := &mi.Info.Files[0]
	if big.Path[0] != "big.bin" || big.Offset != 0 {
		t.Fatalf("first file %v at %d", big.Path, big.Offset)
	}
	tree, err := mi.FileTree(big)
	if err != nil {
		t.Fatal(err)
	}
	leaves := make([][]metainfo.Hash256, tree.NumPieces())
	for p := range leaves {
		leaves[p] = wantBlockHashes(t, mi, src, p)
	}

	var sentBad atomic.Bool
	fake, conns, closed := fakeV2Peer(t, mi, "127.0.0.69", true, func(m wire.Message) []byte {
		switch {
		case m.Keepalive:
		case m.ID == wire.HashRequest:
			h, err := wire.ParseHashRequest(m.Payload)
			if err != nil || h.PiecesRoot != tree.Root {
				return nil
			}
			hr := metainfo.HashRange{BaseLayer: int(h.BaseLayer), Index: int(h.Index), Length: int(h.Length), ProofLayers: int(h.ProofLayers)}
			p, _, _ := tree.NeedsPiece(hr)
			var ls []metainfo.Hash256
			if p < len(leaves) {
				ls = leaves[p]
			}
			hs, err := tree.Answer(hr, p, ls)
			if err != nil {
				return nil
			}
			raw := make([][wire.HashLen]byte, len(hs))
			for i := range hs {
				raw[i] = hs[i]
			}
			return frame(wire.HashesMessage(h, raw))
		case m.ID == wire.Request && m.Index == piece && m.Begin == begin:
			// The one block it sends, wrong in one byte; every other request waits.
			b := append([]byte(nil), want...)
			b[100] ^= 0xFF
			sentBad.Store(true)
			return frame(wire.Message{ID: wire.Piece, Index: m.Index, Begin: m.Begin, Block: b})
		}
		return nil
	})

	seeder := newClient(t, swarm.ClientConfig{})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}, NoBackground: true, CacheBytes: 1 << 20,
		Peers: []netip.AddrPort{fake}})
	testutil.WaitFor(t, 10*time.Second, "a v2 connection to the fake peer", func() bool { return tr.NumV2Peers() == 1 })

	type res struct {
		n   int
		err error
		buf []byte
	}
	done := make(chan res, 1)
	go func() {
		buf := make([]byte, metainfo.BlockSize)
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		n, err := tr.ReadAt(ctx, buf, off)
		done <- res{n, err, buf}
	}()
	testutil.WaitFor(t, 10*time.Second, "the fake peer to send its bad block", sentBad.Load)
	testutil.WaitFor(t, 10*time.Second, "the fake peer banned", func() bool { return tr.Stats().Banned == 1 })
	testutil.WaitFor(t, 10*time.Second, "the fake peer hung up on", func() bool { return closed.Load() >= 1 })
	dials := conns.Load() // an MSE attempt it reset, then the plaintext connection
	if tr.HasPiece(piece) {
		t.Fatalf("piece %d complete: it was not the block hash that caught the bad block", piece)
	}
	select {
	case r := <-done:
		t.Fatalf("the read returned before an honest peer came: %d, %v", r.n, r.err)
	default:
	}

	tr.AddPeers(seeder.Addr().(*net.TCPAddr).AddrPort())
	r := <-done
	if r.err != nil || r.n != len(want) {
		t.Fatalf("read: %d, %v", r.n, r.err)
	}
	if !bytes.Equal(r.buf, want) {
		t.Fatal("read: wrong bytes")
	}
	if s := tr.Stats(); s.Banned != 1 {
		t.Errorf("banned %d addresses, want only the fake peer's", s.Banned)
	}
	if n := tr.NumV2Peers(); n != 1 {
		t.Errorf("%d v2 connections after the read, want the honest peer's", n)
	}
	if n := conns.Load(); n != dials {
		t.Errorf("the fake peer got %d connections after its ban: a banned address was dialed again", n-dials)
	}
}

// A read of a file's last bytes is released by blocks too: the file's last block is short
// and the rest of that block's 16 KiB is the pad file before the next file, which a peer
// sends as zeros. The block's BEP 52 leaf is the hash of the file's bytes alone, so the
// zeros must not be hashed with them; hashing them made an honest seeder fail the check
// and be banned, and the read then waited forever (seen with a qBittorrent seeder).
func TestReadOfAFilesShortLastBlockReleased(t *testing.T) {
	const piece = filmPiece
	src := t.TempDir()
	root := filepath.Join(src, "film")
	size := int64(3*piece - 12345) // the last block holds 16384-12345 bytes of film.bin
	testpeers.WriteFiles(t, root, map[string]int64{"film.bin": size, "notes.txt": 1000}, 9)
	mi, _, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{PieceLength: piece, NoDate: true, Version: metainfo.Hybrid})
	if err != nil {
		t.Fatal(err)
	}
	if f := mi.Info.Files[1]; !f.Padding {
		t.Fatalf("second file %v is not a pad file", f.Path)
	}
	want, err := os.ReadFile(filepath.Join(root, "film.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tr := slowV2Seeder(t, mi, src)
	checkReleasedReads(t, tr, want, piece, []int64{size - 16<<10, piece + 5000})
	if n := tr.Stats().Banned; n != 0 {
		t.Errorf("%d peers banned: the honest seeder's short last block failed its hash", n)
	}
}
