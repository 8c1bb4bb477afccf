package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
)

// TestMountSeekQBittorrentSeeders seeks far in an open file while the background download
// keeps two rate-limited qBittorrent (libtorrent) seeders busy. libtorrent serves one
// peer's requests in order and reads them into its send buffer ahead of its rate limit, out
// of reach of a cancel, so the seek's blocks must find short queues there: the far piece
// completes before more than a few background pieces, and the engine's trace shows that
// whenever it asked a seeder for one of the seek's blocks, hardly any request for another
// piece was still ahead of it there.
func TestMountSeekQBittorrentSeeders(t *testing.T) {
	testutil.NeedFUSE(t)
	testutil.Need(t, "qbittorrent-nox")
	const size, piece = 32 << 20, 256 << 10
	_, torrent, src := mountTorrentFiles(t, "film.bin", map[string]int64{"": size}, piece)
	var addrs []string
	for _, ip := range []string{"127.0.0.31", "127.0.0.32"} {
		q := testpeers.StartQBittorrentLimited(t, ip, 1<<20)
		q.AddTorrent(t, torrent, src)
		q.WaitSeeding(t, 60*time.Second)
		addrs = append(addrs, fmt.Sprintf("%s:%d", ip, q.Port))
	}
	mnt := filepath.Join(t.TempDir(), "m")
	args := append([]string{"--log-level", "trace", "--cache-dir", t.TempDir()}, mountPeerFlags(addrs)...)
	m := mountAt(t, torrent, mnt, args...)
	// A player opens the file, then seeks: while it is open and nothing is due, the
	// background download keeps only a short queue at each seeder.
	r := startMountScriptReader(t, filepath.Join(mnt, "film.bin"), src, "film.bin")
	// The background download is under way at both seeders before the seek.
	testutil.WaitFor(t, 60*time.Second, "the background download from both seeders", func() bool {
		if m.Exited() {
			t.Fatalf("mount exited: %v\n%s", m.Err(), m.Stderr())
		}
		done := mountPieceSet(mountVerified(m))
		return len(done) >= 12 && len(peersServing(m.Stderr())) == 2
	})
	// The far piece must be one the background download has not touched yet; it picks at
	// random, so a piece it took meanwhile makes the attempt void, and another is tried.
	for attempt, frac := range []int{70, 55, 85, 40} {
		log := m.Stderr()
		far := untouched(log, size/piece*frac/100, size/piece)
		if far < 0 {
			continue
		}
		start := time.Now()
		r.read(t, int64(far)*piece+4096, 64<<10, 20*time.Second)
		mountVerifiedBefore(t, m, far) // wait for its line
		ev := parseTrace(m.Stderr())
		if ev.requestedBefore(far, start) {
			t.Logf("attempt %d: the background download took piece %d before the seek; trying another", attempt+1, far)
			continue
		}
		ahead := ev.verifiedBetween(start, far)
		t.Logf("the far piece %d completed %v after the read began, after %d background pieces", far, ev.verified[far].Sub(start), ahead)
		// Two seeders at 1 MiB/s give 8 pieces a second. What a seeder has in its send
		// buffer for cancelled requests still comes first: with background queues kept to
		// a quarter second while the file is open, 0 or 1 pieces here; with full
		// pipelines, 4 to 9.
		if ahead > 4 {
			t.Errorf("the far piece %d completed after %d background pieces: it queued behind them", far, ahead)
		}
		worst, where := ev.maxAheadOf(far, start, far, far+16)
		t.Logf("at most %d requests for other pieces were ahead of the seek's blocks at a seeder (%s)", worst, where)
		if worst > 8 {
			t.Errorf("a seek's block was requested behind %d requests for other pieces at %s", worst, where)
		}
		return
	}
	t.Fatal("the background download took every far piece tried before the seek could")
}

var traceRE = regexp.MustCompile(`time="([^"]+)" level=\w+ msg=(request|cancel|block|"piece verified") (?:begin=(\d+) )?.*?(?:peer="?([0-9.:]+)"? )?piece=(\d+)`)

// traceEvent is one line of the mount's trace: a request, cancel or block at a peer, or a
// verified piece.
type traceEvent struct {
	at           time.Time
	what, peer   string
	piece, begin int
}

type trace struct {
	events   []traceEvent
	verified map[int]time.Time
}

func parseTrace(log string) trace {
	tr := trace{verified: map[int]time.Time{}}
	for _, m := range traceRE.FindAllStringSubmatch(log, -1) {
		at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", m[1])
		if err != nil {
			continue
		}
		begin, _ := strconv.Atoi(m[3])
		piece, _ := strconv.Atoi(m[5])
		e := traceEvent{at: at, what: strings.Trim(m[2], `"`), peer: m[4], piece: piece, begin: begin}
		tr.events = append(tr.events, e)
		if e.what == "piece verified" {
			if _, seen := tr.verified[piece]; !seen {
				tr.verified[piece] = at
			}
		}
	}
	return tr
}

// untouched is the first piece in [from, to) that the log shows neither requested nor
// verified, or -1.
func untouched(log string, from, to int) int {
	touched := map[int]bool{}
	for _, e := range parseTrace(log).events {
		touched[e.piece] = true
	}
	for i := from; i < to; i++ {
		if !touched[i] {
			return i
		}
	}
	return -1
}

func (tr trace) requestedBefore(piece int, t time.Time) bool {
	for _, e := range tr.events {
		if e.piece == piece && e.what == "request" && e.at.Before(t) {
			return true
		}
	}
	return false
}

// verifiedBetween counts the pieces other than piece verified from t until piece was.
func (tr trace) verifiedBetween(t time.Time, piece int) int {
	end := tr.verified[piece]
	n := 0
	for i, at := range tr.verified {
		if i != piece && !at.Before(t) && !at.After(end) {
			n++
		}
	}
	return n
}

// maxAheadOf replays the trace: for every request of piece from t on, how many requests for
// pieces outside [first, last) (the seek and its window) were still outstanding at that
// peer, neither delivered nor cancelled. It returns the most, and where.
func (tr trace) maxAheadOf(piece int, t time.Time, first, last int) (int, string) {
	type key struct{ piece, begin int }
	out := map[string]map[key]bool{}
	worst, where := 0, "nowhere"
	for _, e := range tr.events {
		if e.peer == "" {
			continue
		}
		if out[e.peer] == nil {
			out[e.peer] = map[key]bool{}
		}
		k := key{e.piece, e.begin}
		switch e.what {
		case "request":
			if e.piece == piece && !e.at.Before(t) {
				n := 0
				for o := range out[e.peer] {
					if o.piece < first || o.piece >= last {
						n++
					}
				}
				if n > worst {
					worst, where = n, fmt.Sprintf("%s, piece %d block %d", e.peer, e.piece, e.begin)
				}
			}
			out[e.peer][k] = true
		case "cancel", "block":
			delete(out[e.peer], k)
		}
	}
	return worst, where
}

// peersServing lists the peers that delivered blocks, by the mount's trace.
func peersServing(log string) map[string]bool {
	out := map[string]bool{}
	for _, e := range parseTrace(log).events {
		if e.what == "block" {
			out[e.peer] = true
		}
	}
	return out
}
