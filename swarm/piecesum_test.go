package swarm_test

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// Pieces whose blocks are written in order are verified by the SHA-1 of the writes; a
// peer that sends each piece's two blocks the wrong way round gets them read back from
// disk instead. Both downloads complete with the right bytes.
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
		if n := tr.PiecesCheckedBySum(); n >= mi.Info.NumPieces()/2 {
			t.Errorf("%d of %d pieces checked by the SHA-1 of their writes, though the peer sent their blocks out of order", n, mi.Info.NumPieces())
		}
	})
}
