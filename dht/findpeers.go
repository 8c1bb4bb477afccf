package dht

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// maxBoxed bounds the peers waiting in a box for FindPeers to take them.
const maxBoxed = 4096

// peerBox carries one round's peers from the loop to a FindPeers goroutine without the loop
// ever waiting: the loop appends under the box's own small lock and pokes a capacity-1
// channel. The box owns only its queue.
type peerBox struct {
	notify chan struct{}

	mu      sync.Mutex
	peers   []netip.AddrPort
	running int  // lookups not finished
	over    bool // all finished
	total   int  // peers put this round
}

func newPeerBox() *peerBox { return &peerBox{notify: make(chan struct{}, 1)} }

func (b *peerBox) poke() {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// start sets how many lookups feed the box; zero finishes it at once.
func (b *peerBox) start(n int) {
	b.mu.Lock()
	b.running = n
	b.over = n == 0
	b.mu.Unlock()
	b.poke()
}

func (b *peerBox) put(peers []netip.AddrPort) {
	b.mu.Lock()
	b.total += len(peers)
	b.peers = append(b.peers, peers[:min(len(peers), maxBoxed-len(b.peers))]...)
	b.mu.Unlock()
	b.poke()
}

func (b *peerBox) finish() {
	b.mu.Lock()
	b.running--
	b.over = b.running <= 0
	b.mu.Unlock()
	b.poke()
}

func (b *peerBox) take() (peers []netip.AddrPort, over bool, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	peers, b.peers = b.peers, nil
	return peers, b.over, b.total
}

// maxSeenPeers bounds FindPeers' memory of peers already reported.
const maxSeenPeers = 10000

// FindPeers looks up the peers of infohash ih and reports them to found as they arrive, each
// peer once. found runs on the FindPeers goroutine, never on the node's loop, so it may take
// its time (the next peers wait). With port != 0 it announces port to the nearest nodes that
// gave tokens at the end of each lookup. It repeats: every 15 minutes, or after 2 seconds,
// doubling, while a round finds no peers. A round asked for before the node knows any other
// node waits for the bootstrap instead of ending empty. It returns when ctx ends or the node closes.
func (n *Node) FindPeers(ctx context.Context, ih [20]byte, port uint16, found func([]netip.AddrPort)) {
	seen := map[netip.AddrPort]struct{}{}
	retry := n.cfg.retryMin
	for {
		box := newPeerBox()
		select {
		case n.findC <- findRequest{target: ih, port: port, box: box}:
		case <-ctx.Done():
			return
		case <-n.closing:
			return
		}
		total, ok := n.collect(ctx, box, seen, found)
		if !ok {
			if ctx.Err() != nil {
				select {
				case n.cancelC <- box:
				case <-n.done:
				}
			}
			return
		}
		wait := n.cfg.reannounce
		if total == 0 {
			wait, retry = retry, min(2*retry, n.cfg.reannounce)
		} else {
			retry = n.cfg.retryMin
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-n.closing:
			t.Stop()
			return
		}
	}
}

// collect reports box's new peers until its lookups are over; false when ctx ended or the
// node closed first.
func (n *Node) collect(ctx context.Context, box *peerBox, seen map[netip.AddrPort]struct{}, found func([]netip.AddrPort)) (total int, ok bool) {
	for {
		select {
		case <-box.notify:
		case <-ctx.Done():
			return 0, false
		case <-n.done:
			return 0, false
		}
		peers, over, total := box.take()
		var fresh []netip.AddrPort
		for _, p := range peers {
			if _, dup := seen[p]; dup {
				continue
			}
			if len(seen) >= maxSeenPeers {
				clear(seen)
			}
			seen[p] = struct{}{}
			fresh = append(fresh, p)
		}
		if len(fresh) > 0 {
			found(fresh)
		}
		if over {
			return total, true
		}
	}
}
