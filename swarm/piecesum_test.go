package swarm_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/metainfo"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// Pieces whose blocks come in order are verified by the SHA-1 of their writes; a peer that
// sends each piece's two blocks the wrong way round leaves some to be read back (those
// whose second block was written before the first came), and pieces with pad files in
// them (a hybrid torrent) are read back. Every download completes with the right bytes.
func TestPieceSumOrReadBack(t *testing.T) {
	t.Run("in order", func(t *testing.T) {
		mi, src, good := swarmWithGoodSeeder(t)
		c := newClient(t, swarm.ClientConfig{})
		out := t.TempDir()
		tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{good}})
		waitComplete(t, tr, 30*time.Second)
		testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
		if n := tr.PiecesCheckedBySum(); n != mi.Info.NumPieces() {
			t.Errorf("%d of %d pieces checked by the SHA-1 of their writes", n, mi.Info.NumPieces())
		}
	})
	t.Run("out of order", func(t *testing.T) {
		mi, src, _ := swarmWithGoodSeeder(t) // 32 KiB pieces: two blocks each
		data := readTorrentData(t, mi, src)
		swapped := startFakePeer(t, mi, func(fp *fakePeer, c net.Conn, r *wire.Reader) {
			send := func(m wire.Message) bool {
				off := mi.Info.PieceOffset(int(m.Index)) + int64(m.Begin)
				frame := (&wire.Message{ID: wire.Piece, Index: m.Index, Begin: m.Begin, Block: data[off : off+int64(m.Length)]}).AppendTo(nil)
				_, err := c.Write(frame)
				return err == nil
			}
			// Requests are held until the next one comes (or 100 ms pass): a piece's
			// second block goes out before its first.
			var held []wire.Message
			for {
				if len(held) > 0 {
					c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				} else {
					c.SetReadDeadline(time.Time{})
				}
				m, err := r.Read()
				var ne net.Error
				switch {
				case errors.As(err, &ne) && ne.Timeout():
					for _, h := range held {
						if !send(h) {
							return
						}
					}
					held = held[:0]
					continue
				case err != nil:
					return
				case m.ID != wire.Request:
					continue
				}
				if len(held) == 1 && held[0].Index == m.Index {
					if !send(m) || !send(held[0]) {
						return
					}
					held = held[:0]
					continue
				}
				for _, h := range held {
					if !send(h) {
						return
					}
				}
				held = append(held[:0], m)
			}
		})
		c := newClient(t, swarm.ClientConfig{})
		out := t.TempDir()
		tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{}, Peers: []netip.AddrPort{swapped.addr()}})
		waitComplete(t, tr, 60*time.Second)
		testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
		t.Logf("%d of %d pieces checked by the SHA-1 of their writes", tr.PiecesCheckedBySum(), mi.Info.NumPieces())
	})
	t.Run("pad files", func(t *testing.T) {
		src := t.TempDir()
		root := filepath.Join(src, "padded")
		testpeers.WriteFiles(t, root, map[string]int64{"a.bin": 50000, "b.bin": 70000, "c.bin": 3000}, 5)
		mi, _, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{PieceLength: 32 << 10, NoDate: true, Version: metainfo.Hybrid})
		if err != nil {
			t.Fatal(err)
		}
		padded := 0
		for i := range mi.Info.NumPieces() {
			for _, sp := range mi.Info.Spans(mi.Info.PieceOffset(i), mi.Info.PieceSize(i)) {
				if mi.Info.Files[sp.File].Padding {
					padded++
					break
				}
			}
		}
		if padded == 0 {
			t.Fatal("the hybrid has no piece with a pad file")
		}
		seeder := newClient(t, swarm.ClientConfig{})
		addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
		c := newClient(t, swarm.ClientConfig{})
		out := t.TempDir()
		tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{Trackers: [][]string{},
			Peers: []netip.AddrPort{seeder.Addr().(*net.TCPAddr).AddrPort()}})
		waitComplete(t, tr, 30*time.Second)
		testpeers.SameTree(t, root, filepath.Join(out, "padded"))
		if n := tr.PiecesCheckedBySum(); n != mi.Info.NumPieces()-padded {
			t.Errorf("%d of %d pieces checked by the SHA-1 of their writes, want all but the %d with pad files", n, mi.Info.NumPieces(), padded)
		}
	})
}
