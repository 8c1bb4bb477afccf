package swarm_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/swarm/mse"
	"torrentfs/swarm/wire"
)

// hybridFiles has a file of several pieces ending in a partial one, a file of exactly one
// piece, one shorter than a piece, one of a single block and an empty one (64 KiB pieces).
var hybridFiles = map[string]int64{
	"big.bin":       5*64<<10 + 20000,
	"d/one.bin":     64 << 10,
	"d/short.bin":   3*16<<10 - 7,
	"d/tiny.bin":    100,
	"d/empty.bin":   0,
	"zz/second.bin": 2*64<<10 + 1,
}

// makeHybrid writes hybridFiles under dir/name and makes a hybrid torrent of them.
func makeHybrid(t *testing.T, dir string, pieceLen int64) (*metainfo.MetaInfo, string) {
	t.Helper()
	root := filepath.Join(dir, "hyb")
	testpeers.WriteFiles(t, root, hybridFiles, 52)
	mi, data, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{PieceLength: pieceLen, NoDate: true, Version: metainfo.Hybrid})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hyb.torrent")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return mi, path
}

// wantBlockHashes hashes piece i's blocks from the files under dir, independently of the
// merkle code: SHA-256 of each 16 KiB of the piece's file, the last one short.
func wantBlockHashes(t *testing.T, mi *metainfo.MetaInfo, dir string, i int) []metainfo.Hash256 {
	t.Helper()
	k, pf, ok := mi.V2Piece(i)
	if !ok {
		t.Fatalf("piece %d has no v2 file", i)
	}
	f := &mi.Info.Files[k]
	data, err := os.ReadFile(filepath.Join(append([]string{dir, mi.Info.Name}, f.Path...)...))
	if err != nil {
		t.Fatal(err)
	}
	start := int64(pf) * mi.Info.PieceLength
	end := min(start+mi.Info.PieceLength, int64(len(data)))
	var out []metainfo.Hash256
	for off := start; off < end; off += metainfo.BlockSize {
		out = append(out, metainfo.HashBlock(data[off:min(off+metainfo.BlockSize, end)]))
	}
	return out
}

// interestingPieces are the first piece, one in the middle of big.bin, the last (partial)
// piece of big.bin and of zz/second.bin, and the one piece of d/one.bin and d/short.bin.
func interestingPieces(t *testing.T, mi *metainfo.MetaInfo) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, f := range mi.Info.Files {
		if f.Padding || f.Length == 0 {
			continue
		}
		first := int(f.Offset / mi.Info.PieceLength)
		last := int((f.Offset + f.Length - 1) / mi.Info.PieceLength)
		name := filepath.Join(f.Path...)
		out[name+" first"] = first
		out[name+" last"] = last
		if last-first > 1 {
			out[name+" middle"] = (first + last) / 2
		}
	}
	return out
}

func checkBlockHashes(t *testing.T, tr *swarm.Torrent, mi *metainfo.MetaInfo, dir string) {
	t.Helper()
	for name, i := range interestingPieces(t, mi) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := tr.BlockHashes(ctx, i)
		cancel()
		if err != nil {
			t.Fatalf("%s (piece %d): %v", name, i, err)
		}
		want := wantBlockHashes(t, mi, dir, i)
		if len(got) != len(want) {
			t.Fatalf("%s (piece %d): %d block hashes, want %d", name, i, len(got), len(want))
		}
		for b := range want {
			if got[b] != want[b] {
				t.Fatalf("%s (piece %d): block %d hash differs", name, i, b)
			}
		}
	}
}

func TestBlockHashesFromOurSeeder(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeHybrid(t, src, 64<<10)
	seeder := newClient(t, swarm.ClientConfig{})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	c := newClient(t, swarm.ClientConfig{})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{},
		NoBackground: true, CacheBytes: 1 << 20, Peers: []netip.AddrPort{seeder.Addr().(*net.TCPAddr).AddrPort()}})
	testutil.WaitFor(t, 10*time.Second, "a v2 connection", func() bool { return tr.NumV2Peers() == 1 })
	checkBlockHashes(t, tr, mi, src)
	// A padding piece and a piece out of range have none.
	if _, err := tr.BlockHashes(context.Background(), mi.Info.NumPieces()); !errors.Is(err, swarm.ErrNoBlockHashes) {
		t.Fatalf("piece past the end: %v", err)
	}
}

func TestHybridHandshakes(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeHybrid(t, src, 64<<10)
	v1mi, _ := makeTorrent(t, t.TempDir(), "plain", map[string]int64{"a": 100 << 10}, 32<<10)
	c := newClient(t, swarm.ClientConfig{Encryption: swarm.EncryptionPrefer})
	addTorrent(t, c, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	addTorrent(t, c, v1mi, t.TempDir(), false, swarm.TorrentConfig{Trackers: [][]string{}})
	v2ih := mi.InfoHashV2.Truncate()
	var none, v2bit wire.Reserved
	v2bit.SetV2(true)
	for _, tt := range []struct {
		name    string
		ih      metainfo.Hash
		res     wire.Reserved
		wantIH  metainfo.Hash
		wantBit bool
	}{
		{"v1 peer of a hybrid", mi.InfoHash, none, mi.InfoHash, true},
		{"v1 hash and the v2 bit: upgraded", mi.InfoHash, v2bit, v2ih, false},
		{"truncated v2 hash", v2ih, none, v2ih, false},
		{"v1 torrent", v1mi.InfoHash, none, v1mi.InfoHash, false},
		{"v1 torrent, peer sets the v2 bit", v1mi.InfoHash, v2bit, v1mi.InfoHash, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := dialHandshake2(t, c.Addr(), tt.ih, tt.res)
			if rc.hs.InfoHash != tt.wantIH || rc.hs.Reserved.V2() != tt.wantBit {
				t.Fatalf("answered %x with v2 bit %v; want %x, %v", rc.hs.InfoHash, rc.hs.Reserved.V2(), tt.wantIH, tt.wantBit)
			}
		})
	}
	// MSE names the torrent by a hash of its info-hash: the v2 one finds the hybrid too.
	t.Run("MSE with the v2 hash", func(t *testing.T) {
		conn, err := net.Dial("tcp", c.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		hs := wire.Handshake{InfoHash: v2ih, PeerID: fakePeerID}
		ec, _, err := mse.Initiate(conn, v2ih, mse.RC4, hs.AppendTo(nil))
		if err != nil {
			t.Fatal(err)
		}
		_, ih, err := wire.ReadHandshakeHeader(ec)
		if err != nil || ih != v2ih {
			t.Fatalf("answered %x, %v", ih, err)
		}
	})
}
