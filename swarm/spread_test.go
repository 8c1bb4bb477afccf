package swarm_test

import (
	"slices"
	"testing"
	"time"

	"torrentfs/swarm"
	"torrentfs/swarm/wire"
)

// A spreading seed (seed --spread) rejects a request for a piece it already gave to
// another peer that is still downloading (has it or is getting it), while some piece has
// gone to nobody; a piece it gave to a peer keeps coming to that peer; once every piece
// has gone out once, requests are served as usual.
func TestSpreadingSeed(t *testing.T) {
	const block = 16 << 10
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "spread", map[string]int64{"a.bin": 4 * 2 * block}, 2*block) // 4 pieces of 2 blocks
	seeder := newClient(t, swarm.ClientConfig{})
	addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}, Spread: true})

	var res wire.Reserved
	res.SetFast(true)
	atUnchoke := map[string][]uint32{}
	// leecher connects, has nothing, is interested and waits to be unchoked.
	leecher := func(name string) rawConn {
		var id [20]byte
		copy(id[:], "-FK0001-spread-"+name)
		conn := dialHandshakeAs(t, seeder.Addr(), mi.InfoHash, res, id)
		writeMsg(t, conn.c, wire.Message{ID: wire.HaveNone})
		writeMsg(t, conn.c, wire.Message{ID: wire.Interested})
		conn.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			m, err := conn.r.Read()
			if err != nil {
				t.Fatalf("waiting for an unchoke: %v", err)
			}
			if m.ID == wire.Unchoke {
				break
			}
		}
		// With the unchoke come two suggestions of pieces given to nobody.
		var got []uint32
		for len(got) < 2 {
			m, err := conn.r.Read()
			if err != nil {
				t.Fatalf("waiting for the suggestions that follow an unchoke: %v", err)
			}
			if m.ID == wire.Suggest {
				got = append(got, m.Index)
			}
		}
		atUnchoke[name] = got
		return conn
	}
	suggested := map[rawConn][]uint32{}
	// ask requests a block and returns the answer's message ID (Piece or Reject); the
	// suggestions read meanwhile go to suggested.
	ask := func(conn rawConn, piece, begin uint32) wire.ID {
		t.Helper()
		writeMsg(t, conn.c, wire.Message{ID: wire.Request, Index: piece, Begin: begin, Length: block})
		conn.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			m, err := conn.r.Read()
			if err != nil {
				t.Fatalf("request %d+%d: %v", piece, begin, err)
			}
			if m.ID == wire.Suggest {
				suggested[conn] = append(suggested[conn], m.Index)
			}
			if (m.ID == wire.Piece || m.ID == wire.Reject) && m.Index == piece && m.Begin == begin {
				return m.ID
			}
		}
	}
	a, b := leecher("a"), leecher("b")
	// Each was sent to pieces of its own: the seed's uplink carries distinct pieces.
	for _, i := range atUnchoke["a"] {
		if slices.Contains(atUnchoke["b"], i) {
			t.Fatalf("a and b were both suggested piece %d at their unchokes (a %v, b %v)", i, atUnchoke["a"], atUnchoke["b"])
		}
	}
	if got := ask(a, 0, 0); got != wire.Piece {
		t.Fatalf("a's first request for piece 0: %v, want a piece", got)
	}
	writeMsg(t, a.c, wire.Message{ID: wire.Have, Index: 0})
	// Ordering: the have reaches the seeder before b's request does only if the seeder read
	// it first; ask a again (served: it was given piece 0) to be sure it was read.
	if got := ask(a, 0, block); got != wire.Piece {
		t.Fatalf("a's second block of piece 0: %v, want a piece (it was given the piece)", got)
	}
	if got := ask(b, 0, 0); got != wire.Reject {
		t.Fatalf("b's request for piece 0, which a has: %v, want a reject", got)
	}
	if got := ask(b, 1, 0); got != wire.Piece {
		t.Fatalf("b's request for piece 1, given to nobody: %v, want a piece", got)
	}
	// With the reject came a suggestion of a piece given to nobody (the suggest follows the
	// reject on the wire, so it was read by the time the next answer came).
	if got := suggested[b]; len(got) == 0 || got[len(got)-1] == 0 {
		t.Fatalf("b was suggested %v since its unchoke, want a piece other than 0 last", got)
	}
	if got := ask(a, 2, 0); got != wire.Piece {
		t.Fatalf("a's request for piece 2, given to nobody: %v, want a piece", got)
	}
	// a is getting piece 2 from us: it will pass it on.
	if got := ask(b, 2, block); got != wire.Reject {
		t.Fatalf("b's request for piece 2, on its way to a: %v, want a reject", got)
	}
	if got := ask(a, 3, 0); got != wire.Piece {
		t.Fatalf("a's request for piece 3, given to nobody: %v, want a piece", got)
	}
	// Every piece has gone out once: spreading is over.
	if got := ask(b, 0, 0); got != wire.Piece {
		t.Fatalf("b's request for piece 0 after every piece went out: %v, want a piece", got)
	}
}
