package swarm

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// CachePool shares one byte bound among several torrents' caches (a library mount's
// --cache-size): the least recently read piece of any of them goes first.
//
// Each member torrent's ledger is bounded by the whole pool's bound and stamps its reads
// with the pool's clock. Its loop publishes, after every event, the bytes its cache uses
// and the stamp of its least recently read evictable piece (atomics). The pool's own
// goroutine looks at those a few times a second and, while the members together are over
// the bound, has the member holding the oldest piece evict it (on that member's loop).
// Between two looks the members may together pass the bound by what they fetched in the
// meantime: the bound is kept within a fraction of a second, not at every instant; a full
// disk is handled by each torrent as without a pool.
type CachePool struct {
	bound int64
	clock atomic.Int64

	mu      sync.Mutex
	members map[*Torrent]struct{}

	closing chan struct{}
	done    chan struct{}
}

// poolEvery is how often the pool compares its members against the bound.
const poolEvery = 200 * time.Millisecond

// NewCachePool starts a pool bounded to bound bytes (> 0). Close stops it.
func NewCachePool(bound int64) *CachePool {
	p := &CachePool{bound: bound, members: map[*Torrent]struct{}{}, closing: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Bound is the pool's byte bound.
func (p *CachePool) Bound() int64 { return p.bound }

// Used is the bytes the members' caches use together, as last published.
func (p *CachePool) Used() int64 {
	var sum int64
	for _, t := range p.snapshot() {
		sum += t.poolUsed.Load()
	}
	return sum
}

// Close stops the pool's goroutine; members keep their own bounds.
func (p *CachePool) Close() {
	select {
	case <-p.closing:
	default:
		close(p.closing)
	}
	<-p.done
}

func (p *CachePool) tick() int64 { return p.clock.Add(1) }

func (p *CachePool) join(t *Torrent) {
	p.mu.Lock()
	p.members[t] = struct{}{}
	p.mu.Unlock()
}

func (p *CachePool) leave(t *Torrent) {
	p.mu.Lock()
	delete(p.members, t)
	p.mu.Unlock()
}

func (p *CachePool) snapshot() []*Torrent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Torrent, 0, len(p.members))
	for t := range p.members {
		out = append(out, t)
	}
	return out
}

func (p *CachePool) run() {
	defer close(p.done)
	tk := time.NewTicker(poolEvery)
	defer tk.Stop()
	for {
		select {
		case <-p.closing:
			return
		case <-tk.C:
			p.balance()
		}
	}
}

// balance evicts the oldest pieces of the pool until its members fit the bound, or none
// has an evictable piece.
func (p *CachePool) balance() {
	members := p.snapshot()
	var used int64
	for _, t := range members {
		used += t.poolUsed.Load()
	}
	for used > p.bound {
		var victim *Torrent
		oldest := int64(math.MaxInt64)
		for _, t := range members {
			if s := t.poolOldest.Load(); s < oldest {
				victim, oldest = t, s
			}
		}
		if victim == nil {
			return // everything left is pinned by readers
		}
		freed := victim.evictOldest()
		if freed == 0 {
			victim.poolOldest.Store(math.MaxInt64) // nothing to take there after all
			continue
		}
		used -= freed
	}
}

// evictOldest evicts the torrent's least recently read evictable piece (on its loop) and
// returns its size; 0 when it has none or has stopped.
func (t *Torrent) evictOldest() int64 {
	var freed int64
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t.do(ctx, func() {
		i, _, ok := t.ledger.Oldest()
		if !ok {
			return
		}
		t.ledger.Evict(i)
		t.evict([]int{i})
		t.poolOldestAt = time.Time{} // the next publish finds the new oldest
		freed = t.info.PieceSize(i)
		t.log.WithField("piece", i).Debug("evicted for the cache pool")
	})
	return freed
}

// publishPool tells the pool what the cache uses and how old its oldest evictable piece
// is. Loop only, after every event; a no-op outside a pool. Finding the oldest piece walks
// past the pinned ones at the head of the order, so it is redone at most every
// poolEvery/4 (the pool only looks every poolEvery), except when the last answer was
// "nothing to evict" and there is now something.
func (t *Torrent) publishPool() {
	if t.cfg.Pool == nil {
		return
	}
	t.poolUsed.Store(t.ledger.Used())
	now := time.Now()
	// A stale stamp of a piece since read again or evicted only makes the torrent look
	// older than it is for a moment; a stale "nothing to evict" would hide its pieces
	// from the pool until its next publish, which a quiet torrent makes seconds later.
	nothing := t.poolOldest.Load() == math.MaxInt64
	if now.Sub(t.poolOldestAt) < poolEvery/4 && !(nothing && t.ledger.Evictable()) {
		return
	}
	t.poolOldestAt = now
	if _, stamp, ok := t.ledger.Oldest(); ok {
		t.poolOldest.Store(stamp)
	} else {
		t.poolOldest.Store(math.MaxInt64)
	}
}
