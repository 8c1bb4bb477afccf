package dht

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

const peerTTL = 30 * time.Minute

type storedPeer struct {
	addr    netip.AddrPort
	expires time.Time
}

// swarmPeers holds one infohash's peers, oldest announce first.
type swarmPeers struct {
	peers []storedPeer
}

// peerStore keeps the peers announced to us, per infohash, bounded in torrents and in peers per
// torrent; a full torrent evicts its oldest peer, a full store its torrent announced least
// recently. Pure logic with now passed in; owned by the node's loop.
type peerStore struct {
	maxTorrents, maxPeers int
	m                     map[nodeID]*swarmPeers
	count                 int
}

func newPeerStore(maxTorrents, maxPeers int) *peerStore {
	return &peerStore{maxTorrents: maxTorrents, maxPeers: maxPeers, m: map[nodeID]*swarmPeers{}}
}

func (s *peerStore) add(ih nodeID, addr netip.AddrPort, now time.Time) {
	sp, ok := s.m[ih]
	if !ok {
		if len(s.m) >= s.maxTorrents {
			s.expire(now)
		}
		if len(s.m) >= s.maxTorrents {
			s.evictStalest()
		}
		sp = &swarmPeers{}
		s.m[ih] = sp
	}
	if i := slices.IndexFunc(sp.peers, func(p storedPeer) bool { return p.addr == addr }); i >= 0 {
		sp.peers = slices.Delete(sp.peers, i, i+1)
		s.count--
	}
	if len(sp.peers) >= s.maxPeers {
		sp.peers = slices.Delete(sp.peers, 0, 1)
		s.count--
	}
	sp.peers = append(sp.peers, storedPeer{addr: addr, expires: now.Add(peerTTL)})
	s.count++
}

func (s *peerStore) evictStalest() {
	var victim nodeID
	var oldest time.Time
	first := true
	for ih, sp := range s.m {
		last := time.Time{}
		if len(sp.peers) > 0 {
			last = sp.peers[len(sp.peers)-1].expires
		}
		if first || last.Before(oldest) {
			victim, oldest, first = ih, last, false
		}
	}
	if !first {
		s.count -= len(s.m[victim].peers)
		delete(s.m, victim)
	}
}

// expire drops expired peers and empty torrents.
func (s *peerStore) expire(now time.Time) {
	for ih, sp := range s.m {
		n := len(sp.peers)
		sp.peers = slices.DeleteFunc(sp.peers, func(p storedPeer) bool { return !now.Before(p.expires) })
		s.count -= n - len(sp.peers)
		if len(sp.peers) == 0 {
			delete(s.m, ih)
		}
	}
}

// sample returns up to max live peers of ih, chosen at random, of the families asked for.
func (s *peerStore) sample(ih nodeID, max int, want4, want6 bool, now time.Time) []netip.AddrPort {
	sp, ok := s.m[ih]
	if !ok {
		return nil
	}
	var out []netip.AddrPort
	for _, p := range sp.peers {
		is4 := p.addr.Addr().Is4()
		if now.Before(p.expires) && (is4 && want4 || !is4 && want6) {
			out = append(out, p.addr)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:min(max, len(out))]
}

func (s *peerStore) torrents() int { return len(s.m) }
func (s *peerStore) peers() int    { return s.count }
