package swarm

// Web seeds (BEP 19), the loop's side. A web seed is a pseudo-peer of the picker that has
// every piece and never chokes: the loop asks Pick for its blocks like for any peer's (due
// pieces first, so a read head's urgent pieces go to it too), sorts them into jobs of
// contiguous runs and runs up to webSlots jobs at once, each on a goroutine of its own
// (webseed.go). A web seed whose requests fail, or whose bytes fail a piece's hash, rests
// for a backoff that doubles with each failure in a row and is used again after it.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/metainfo"
	"torrentfs/picker"
)

const (
	// webSlots is how many requests a web seed has in flight at once.
	webSlots = 3
	// maxWebSeeds bounds the web seeds used of one torrent's url-list.
	maxWebSeeds = 8
	// webJobSeconds sizes the web seed's jobs together at this many seconds of its
	// measured rate (each job a webSlots-th of that), between webJobMin and webJobMax
	// bytes and never less than one piece; the smallest size until the rate is measured.
	// Pieces asked of a web seed are claimed until they come: in a fleet sharing one
	// origin, deep claims at a slow share of it make other downloaders fetch the same
	// pieces (picker/web.go). 16 nodes starting with 1 MiB jobs asked for 48 MiB at once
	// of an origin sending 2 MiB/s. Jobs of 10-16 MiB made a 256 MiB download from a
	// local nginx take 1.5 s against 0.6 s with jobs of 1-4 MiB.
	webJobSeconds = 1.0
	webJobMin     = 64 << 10
	webJobMax     = 4 << 20
	// webRetry is the first rest after an HTTP failure, webBadData after a piece failed
	// its hash; both double with each failure in a row, up to webMaxRest.
	webRetry   = 5 * time.Second
	webBadData = time.Minute
	webMaxRest = 30 * time.Minute
)

// webSeed is one origin of a torrent's url-list. Its fields under "loop-owned" belong to
// the torrent's loop; received is added to by the fetch goroutines.
type webSeed struct {
	url      string
	key      picker.PeerID
	log      *logrus.Entry
	received atomic.Int64 // body bytes read since the last tick

	// loop-owned
	jobs     []*webJob // in flight
	downRate rateMeter
	useful   int64     // bytes of blocks the picker took from it
	fails    int       // failures in a row
	resting  bool      // not used until restUntil
	until    time.Time // end of the rest
}

// addWebSeeds registers the torrent's web seeds with the picker, before the loop starts.
func (t *Torrent) addWebSeeds() {
	urls := t.cfg.WebSeeds
	if urls == nil {
		urls = t.mi.URLList
	}
	seen := map[string]bool{}
	for _, u := range urls {
		if len(t.webSeeds) == maxWebSeeds {
			break
		}
		if seen[u] {
			continue
		}
		seen[u] = true
		log := t.log.WithField("webseed", u)
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			log.Info("ignoring a web seed that is not an http or https URL")
			continue
		}
		ws := &webSeed{url: u, key: t.peers.reserveKey(), log: log}
		t.webSeeds = append(t.webSeeds, ws)
		t.pk.PeerAdd(ws.key)
		t.pk.PeerHaveAll(ws.key)
		t.pk.PeerWeb(ws.key)
		t.pk.PeerUnchoked(ws.key)
	}
}

// webSeedByKey finds a web seed by its picker key.
func (t *Torrent) webSeedByKey(k picker.PeerID) *webSeed {
	for _, ws := range t.webSeeds {
		if ws.key == k {
			return ws
		}
	}
	return nil
}

// fillWeb starts jobs at the web seed while it has free slots and the picker gives it
// blocks.
func (t *Torrent) fillWeb(ws *webSeed) {
	if ws.resting || t.err != nil || t.disk.writeBytes > maxWriteBacklog {
		return
	}
	now := time.Now()
	for len(ws.jobs) < webSlots && t.webRoom(ws, now) {
		size := min(max(int64(ws.downRate.recent()*webJobSeconds/webSlots), webJobMin), webJobMax)
		size = max(size, t.info.PieceLength)
		bs := t.pick(ws.key, int((size+metainfo.BlockSize-1)/metainfo.BlockSize), time.Now())
		if len(bs) == 0 {
			break
		}
		slices.SortFunc(bs, picker.CompareBlocks)
		ctx, cancel := context.WithCancel(context.Background())
		j := &webJob{ws: ws, blocks: bs, ctx: ctx, cancel: cancel, started: now}
		for _, b := range bs {
			j.size += int64(b.Length)
		}
		j.left = j.size
		ws.jobs = append(ws.jobs, j)
		ws.log.WithFields(logrus.Fields{"piece": bs[0].Piece, "blocks": len(bs), "last": bs[len(bs)-1].Piece}).Trace("web seed job")
		t.wg.Add(1)
		go t.webFetch(j)
	}
	if len(t.deferred) > 0 {
		ev := t.deferred
		t.deferred = nil
		t.evict(ev)
	}
}

// webOverlap: without a reader about, a web seed's next job starts once every job in
// flight has at most this many seconds of its rate left to come.
const webOverlap = 0.5

// tail is what a job may have left to come when the next one starts: webOverlap of the
// seed's rate.
func (ws *webSeed) tail() int64 { return int64(ws.downRate.recent() * webOverlap) }

// webRoom tells whether the web seed may start another job. Jobs run on connections of
// their own and share the seed's bandwidth, so jobs side by side finish together, late:
// where a fleet shares one origin, three one-piece jobs at a 128 KiB/s share took 6 s
// each, and their pieces stayed claimed, unannounced, all that time (picker/web.go).
// So jobs follow one another, the next starting as the last nears its end, which also
// covers the request's round trip. A fast seed (a job's tail is less than webOverlap of
// its rate) and a reader about, who must not wait for a job to end, still get webSlots
// at once.
func (t *Torrent) webRoom(ws *webSeed, now time.Time) bool {
	if len(ws.jobs) == 0 || t.readerAbout(now) {
		return true
	}
	tail := ws.tail()
	for _, j := range ws.jobs {
		if j.left > tail {
			return false
		}
	}
	return true
}

// onWebBlock takes a block a web seed delivered, as handleBlock takes a peer's.
func (t *Torrent) onWebBlock(ev webBlock) {
	j := ev.job
	if !slices.Contains(j.ws.jobs, j) {
		t.blockPool.Put(ev.buf) // a job given up (rest, preemption, shutdown)
		return
	}
	j.next++
	j.left -= int64(ev.b.Length)
	if j.left <= j.ws.tail() {
		defer t.fillWeb(j.ws) // the next job follows this one (webRoom)
	}
	cancel, complete, ok := t.pk.Received(j.ws.key, ev.b, time.Now())
	if !ok {
		t.blockPool.Put(ev.buf)
		return
	}
	j.ws.useful += int64(ev.b.Length)
	t.webUseful.Add(int64(ev.b.Length))
	t.sendCancels(cancel, ev.b)
	t.queueWrite(j.ws.key, ev.b.Piece, ev.b.Begin, ev.data, ev.buf)
	if complete {
		t.pieceReceived(ev.b.Piece)
	}
}

// onWebDone ends a job: blocks it did not deliver are free again; a failure rests the web
// seed.
func (t *Torrent) onWebDone(ev webDone) {
	j := ev.job
	ws := j.ws
	if !slices.Contains(ws.jobs, j) {
		return // already given up
	}
	t.dropWebJob(j)
	if ev.err != nil {
		t.webFailed(ws, ev.err, webRetry)
	} else if ws.downRate.recent() == 0 {
		// Before the first tick has measured the web seed, a job done is its measure:
		// a fast origin then gets large jobs within its first second.
		ws.downRate.last = float64(j.size) / max(time.Since(j.started).Seconds(), 1e-3)
	}
	t.fillWeb(ws)
}

// dropWebJob stops a job and frees the blocks it has not delivered.
func (t *Torrent) dropWebJob(j *webJob) {
	j.cancel()
	j.ws.jobs = slices.DeleteFunc(j.ws.jobs, func(x *webJob) bool { return x == j })
	for _, b := range j.blocks[j.next:] {
		t.pk.Cancelled(j.ws.key, b)
	}
}

// webFailed rests a web seed after a failure, for longer with each failure in a row (a
// 503's Retry-After, when longer, wins).
func (t *Torrent) webFailed(ws *webSeed, err error, base time.Duration) {
	if ws.resting {
		return
	}
	if t.cfg.webRetry > 0 {
		base = t.cfg.webRetry
	}
	ws.fails++
	rest := min(base<<min(ws.fails-1, 16), webMaxRest)
	var he *webHTTPError
	if errors.As(err, &he) && he.retryAfter > rest {
		rest = he.retryAfter
	}
	for len(ws.jobs) > 0 {
		t.dropWebJob(ws.jobs[0])
	}
	t.pk.PeerChoked(ws.key)
	ws.resting, ws.until = true, time.Now().Add(rest)
	ws.log.WithError(err).Warnf("web seed failed; not using it for %s", roundRest(rest))
}

// roundRest shows a rest to a useful precision.
func roundRest(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// webTick measures the web seeds' rates and ends the rests that are over.
func (t *Torrent) webTick(now time.Time, dt time.Duration) {
	for _, ws := range t.webSeeds {
		ws.downRate.tick(ws.received.Swap(0), dt)
		t.pk.PeerRate(ws.key, ws.downRate.rate)
		if ws.resting && !now.Before(ws.until) {
			ws.resting = false
			t.pk.PeerUnchoked(ws.key)
			ws.log.Info("using the web seed again")
		}
	}
}

// webVerified judges the web seeds that contributed to a piece once it is checked; it
// reports whether any did. A bad piece rests them; a good one ends their run of failures.
func (t *Torrent) webVerified(piece int, contributors map[picker.PeerID]bool, ok bool) bool {
	any := false
	for k := range contributors {
		ws := t.webSeedByKey(k)
		if ws == nil {
			continue
		}
		any = true
		if ok {
			ws.fails = 0
		} else {
			t.webFailed(ws, fmt.Errorf("piece %d failed verification", piece), webBadData)
		}
	}
	return any
}

// preemptWeb gives up a web seed's jobs whose blocks still to come all stand in the way of
// a starved due piece (see preempt), so a free slot asks for the due piece at once.
func (t *Torrent) preemptWeb(ws *webSeed, now, by time.Time) {
	if ws.resting || len(ws.jobs) < webSlots {
		return
	}
	pre := t.pk.Preemptible(ws.key, now, by)
	if len(pre) == 0 {
		return
	}
	in := make(map[picker.Block]bool, len(pre))
	for _, b := range pre {
		in[b] = true
	}
	for _, j := range slices.Clone(ws.jobs) {
		if !slices.ContainsFunc(j.blocks[j.next:], func(b picker.Block) bool { return !in[b] }) {
			t.dropWebJob(j)
		}
	}
}

// stopWeb ends every job, at shutdown.
func (t *Torrent) stopWeb() {
	for _, ws := range t.webSeeds {
		for _, j := range ws.jobs {
			j.cancel()
		}
	}
}
