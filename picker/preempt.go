package picker

import (
	"math"
	"slices"
	"time"
)

// Streaming needs due pieces fetched now, yet peers' pipelines are usually full of requests
// for background pieces that they serve first, in order. These two calls let the caller
// make room: when a piece due soon has blocks nobody was asked for, it cancels background
// requests at the peers and fills their pipelines again, due blocks first.

// Starved reports whether a piece due by `by` has blocks that no peer was asked for and
// that some connected peer could serve.
func (p *Picker) Starved(by time.Time) bool {
	for _, d := range p.due {
		if d.due.After(by) {
			return false
		}
		if p.have.Has(d.piece) {
			continue
		}
		if ps := p.partial[d.piece]; ps != nil && ps.free == 0 {
			continue
		}
		if p.haveAll > 0 || p.avail[d.piece] > 0 {
			return true
		}
	}
	return false
}

// preemptSlack is how much later than the most urgent starved piece a due piece may be and
// still keep its requests at a peer: pieces due at about the same moment are about as
// urgent. It is short: a file's head and tail, prefetched half a second after it is
// opened, must not hold up a seek that a player makes right after opening.
const preemptSlack = 100 * time.Millisecond

// maxSpared bounds the age under which Preemptible leaves a request alone.
const maxSpared = 300 * time.Millisecond

// Preemptible returns the peer's outstanding requests that stand in the way of a starved
// piece due by `by` that the peer could serve: requests for pieces not due at all, and for
// pieces due more than preemptSlack after the earliest such piece (a readahead window or a
// prefetch that a seek just overtook). A peer serves requests in order, so without this the urgent blocks
// would wait for all of them. The caller cancels them at the peer, reports each with
// Cancelled, and fills the pipeline again, where the urgent blocks now come first.
//
// Requests younger than the peer's round trip are left alone: the peer has barely seen them,
// a cancel would reach it after it queued the block (libtorrent reads requested blocks into
// its send buffer at once), and the block would come anyway while a copy of it is asked of
// another peer. At a distant peer, cancelling what the last refill asked for made the same
// blocks go back and forth, each arriving several times (docs/BENCHMARKS.md, WAN lab).
//
// The round trip counted is at most maxSpared: a seeder that answers in turns (aria2c
// with an upload limit, once a second) looks far away, and its requests must still give
// way to a seek.
func (p *Picker) Preemptible(id PeerID, now, by time.Time) []Block {
	pr := p.peers[id]
	if pr == nil || len(pr.out) == 0 {
		return nil
	}
	var first time.Time
	found, free := false, 0
	for _, d := range p.due {
		if d.due.After(by) {
			break
		}
		if p.have.Has(d.piece) || !pr.hasPiece(d.piece) {
			continue
		}
		free = p.geo.numBlocks(d.piece)
		if ps := p.partial[d.piece]; ps != nil {
			if ps.free == 0 {
				continue
			}
			free = ps.free
		}
		first, found = d.due, true
		break
	}
	if !found {
		return nil
	}
	// A piece not due yet that the peer could still deliver in time behind its queue (its
	// free blocks appended, a round trip on top) needs nothing cancelled there. The due
	// stage leaves a window's blocks free on purpose when a faster peer will have room
	// soon; cancelling for them at every refill only shuffled the peers' queues, and at a
	// distant peer every shuffle brought blocks twice.
	if first.After(now) {
		drain := pr.rtt + seconds(float64((len(pr.out)+free)*BlockSize)/rate(pr))
		if !now.Add(drain).After(first) {
			return nil
		}
	}
	keep := first.Add(preemptSlack)
	// Young requests are spared only for a piece that is not due yet (a readahead window
	// filling): a reader waiting now gets every request out of its way, cancels that come
	// too late included. (Sparing those made a seek's blocks queue behind the prefetch its
	// own open had ordered a millisecond before.)
	young := now.Add(-min(pr.rtt, maxSpared))
	if !first.After(now) {
		young = now
	}
	forgetCancels(pr, now)
	var out []Block
	order := p.queueOrder(id, pr)
	for place := min(p.committedDepth(pr, now), len(order)); place < len(order); place++ {
		q := order[place]
		if due, ok := p.dueAt[int(q.k.piece)]; ok && !due.After(keep) {
			continue
		}
		if q.since.After(young) {
			continue
		}
		if pr.cancelled == nil {
			pr.cancelled = make(map[blockKey]cancelNote)
		}
		pr.cancelled[q.k] = cancelNote{place: int32(place), at: now}
		out = append(out, p.block(q.k))
	}
	slices.SortFunc(out, CompareBlocks)
	return out
}

// A cancel stops a block only if it reaches the peer before the peer has committed to
// sending it. The oldest requests at a peer are committed: blocks in flight already, and
// those it sends while the cancel travels, a round trip's worth at its rate. Some clients
// commit to more (libtorrent reads requested blocks into its send buffer, up to a
// watermark of 500 KiB by default). Cancelling a committed block gains nothing, since it
// comes anyway, and a copy asked of another peer, or of the same peer again, arrives twice:
// in the WAN lab a third of a copy's bytes were such duplicates. So Preemptible leaves
// the peer's oldest requests alone: a round trip's worth at its rate, or as deep into its
// queue as a cancel of ours was seen to fail there lately, whichever is more.

// maxCommitted bounds the requests counted as committed at a peer (1 MiB).
const maxCommitted = 64

// committedWindow is how long a failed cancel's depth is remembered (at least one window,
// at most two), so that a peer whose send buffer shrinks is trusted again.
const committedWindow = 10 * time.Second

// cancelNote is a preemptive cancel sent to a peer: the block's place in its queue then
// (0 is the oldest request outstanding) and when.
type cancelNote struct {
	place int32
	at    time.Time
}

// cancelMemory is how long a preemptive cancel is remembered: a block that comes after
// that was not sent for it.
const cancelMemory = 3 * time.Second

// committedDepth is how many of the peer's oldest requests a cancel sent now would not
// stop: as many as it sends in a round trip, or as its lately failed cancels show,
// whichever is more.
func (p *Picker) committedDepth(pr *peer, now time.Time) int {
	if now.After(pr.committedWindowEnds) {
		pr.committed, pr.nextCommitted = pr.nextCommitted, 0
		pr.committedWindowEnds = now.Add(committedWindow)
	}
	n := int(math.Ceil(rate(pr) * min(pr.rtt, maxSpared).Seconds() / BlockSize))
	return min(max(n, pr.committed), maxCommitted)
}

// queued is a request outstanding at a peer: the block, when it was asked, and how many
// requests were outstanding there before it.
type queued struct {
	k     blockKey
	since time.Time
	ahead int32
}

// queueOrder is the peer's outstanding requests, oldest first: the order it serves them in.
func (p *Picker) queueOrder(id PeerID, pr *peer) []queued {
	all := make([]queued, 0, len(pr.out))
	for k := range pr.out {
		if r, ok := p.reqOf(id, k); ok {
			all = append(all, queued{k, r.since, r.ahead})
		}
	}
	// Requests sent together are told apart by their place in the queue when sent.
	slices.SortFunc(all, func(a, b queued) int {
		if c := a.since.Compare(b.since); c != 0 {
			return c
		}
		if a.ahead != b.ahead {
			return int(a.ahead - b.ahead)
		}
		return cmpKey(a.k, b.k)
	})
	return all
}

// forgetCancels drops the notes of preemptive cancels older than cancelMemory.
func forgetCancels(pr *peer, now time.Time) {
	for k, c := range pr.cancelled {
		if now.Sub(c.at) > cancelMemory {
			delete(pr.cancelled, k)
		}
	}
}

// cancelFailed is called with a block the peer sent: if it was cancelled lately, the
// cancel came too late, and the peer commits to requests at least that deep in its queue.
func (pr *peer) cancelFailed(k blockKey, now time.Time) {
	c, ok := pr.cancelled[k]
	if !ok {
		return
	}
	delete(pr.cancelled, k)
	if now.Sub(c.at) > cancelMemory {
		return
	}
	d := int(c.place) + 1
	pr.nextCommitted = max(pr.nextCommitted, d)
	pr.committed = max(pr.committed, d)
}
