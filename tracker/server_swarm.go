package tracker

// Swarm state of the embedded tracker. Everything here is guarded by Server.mu; the
// *Locked methods expect it held.

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"time"
)

// srvTorrent is one swarm: its peers keyed by peer id, and how many downloads completed.
type srvTorrent struct {
	peers      map[[20]byte]*srvPeer
	downloaded int
}

type srvPeer struct {
	addr     netip.AddrPort
	key      uint32
	seeder   bool
	lastSeen time.Time
}

// Announce failures told to the client (as `failure reason` or a UDP error).
var (
	errSrvNotAllowed = errors.New("torrent not registered with this tracker")
	errSrvPeerIDUsed = errors.New("peer id already announced from another address")
)

// srvFamily restricts the peers an announce returns: UDP replies carry one address family.
type srvFamily int

const (
	srvFamilyAny srvFamily = iota
	srvFamily4
	srvFamily6
)

func (f srvFamily) admits(a netip.Addr) bool {
	switch f {
	case srvFamily4:
		return a.Is4()
	case srvFamily6:
		return a.Is6()
	}
	return true
}

// announce records req from the peer at addr and picks up to numwant other peers for it.
func (s *Server) announce(req AnnounceRequest, addr netip.AddrPort, family srvFamily) (AnnounceResponse, error) {
	if s.cfg.Allow != nil && !s.cfg.Allow(req.InfoHash) {
		return AnnounceResponse{}, errSrvNotAllowed
	}
	numWant := req.NumWant
	if numWant < 0 {
		numWant = ServerDefaultNumWant
	}
	numWant = min(numWant, ServerMaxNumWant)

	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.torrents[req.InfoHash]
	if t == nil {
		if req.Event == EventStopped {
			return s.responseLocked(nil), nil
		}
		t = &srvTorrent{peers: make(map[[20]byte]*srvPeer)}
		s.torrents[req.InfoHash] = t
	}
	t.expire(now, s.cfg.PeerTTL)

	p := t.peers[req.PeerID]
	if p != nil && p.addr.Addr() != addr.Addr() && p.key != req.Key {
		// Someone else's peer id: without the key that peer announced with, it may not
		// move or stop that peer.
		return AnnounceResponse{}, errSrvPeerIDUsed
	}
	if req.Event == EventStopped {
		delete(t.peers, req.PeerID)
		return s.responseLocked(t), nil
	}
	seeder := req.Left == 0
	if req.Event == EventCompleted && (p == nil || !p.seeder) {
		t.downloaded++
	}
	if p == nil {
		// A client restarted with a new peer id is the same peer: drop its old entry
		// rather than hand out its address twice until the old one expires.
		for id, q := range t.peers {
			if q.addr == addr {
				delete(t.peers, id)
			}
		}
		p = &srvPeer{}
		t.peers[req.PeerID] = p
	}
	*p = srvPeer{addr: addr, key: req.Key, seeder: seeder, lastSeen: now}

	resp := s.responseLocked(t)
	resp.Peers = t.pick(req.PeerID, seeder, numWant, family)
	return resp, nil
}

func (s *Server) responseLocked(t *srvTorrent) AnnounceResponse {
	resp := AnnounceResponse{Interval: s.cfg.Interval, MinInterval: s.cfg.MinInterval}
	if t != nil {
		resp.Complete, resp.Incomplete = t.counts()
	}
	return resp
}

// pick returns up to n peers other than self, chosen at random so that every peer of a big
// swarm gets to be known. Seeders get only leechers: another seeder has nothing for them.
func (t *srvTorrent) pick(self [20]byte, selfSeeder bool, n int, family srvFamily) []Peer {
	if n <= 0 {
		return nil
	}
	cands := make([]Peer, 0, len(t.peers))
	for id, p := range t.peers {
		if id == self || (selfSeeder && p.seeder) || !family.admits(p.addr.Addr()) {
			continue
		}
		cands = append(cands, Peer{Addr: p.addr, ID: id[:]})
	}
	if len(cands) <= n {
		rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		return cands
	}
	// Partial Fisher-Yates: the first n slots end up a uniform random sample.
	for i := range n {
		j := i + rand.IntN(len(cands)-i)
		cands[i], cands[j] = cands[j], cands[i]
	}
	return cands[:n]
}

func (t *srvTorrent) counts() (seeders, leechers int) {
	for _, p := range t.peers {
		if p.seeder {
			seeders++
		} else {
			leechers++
		}
	}
	return seeders, leechers
}

// expire drops the peers that have not announced within ttl.
func (t *srvTorrent) expire(now time.Time, ttl time.Duration) {
	for id, p := range t.peers {
		if now.Sub(p.lastSeen) > ttl {
			delete(t.peers, id)
		}
	}
}

// scrapeLocked returns one torrent's counts, expiring its stale peers first.
func (s *Server) scrapeLocked(infoHash [20]byte, now time.Time) ScrapeStats {
	t := s.torrents[infoHash]
	if t == nil {
		return ScrapeStats{}
	}
	t.expire(now, s.cfg.PeerTTL)
	seeders, leechers := t.counts()
	return ScrapeStats{Complete: seeders, Downloaded: t.downloaded, Incomplete: leechers}
}

// scrape returns the counts of the given torrents, or of every torrent when none is given.
func (s *Server) scrape(hashes [][20]byte) map[[20]byte]ScrapeStats {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[[20]byte]ScrapeStats, max(len(hashes), len(s.torrents)))
	if len(hashes) == 0 {
		for ih := range s.torrents {
			out[ih] = s.scrapeLocked(ih, now)
		}
		return out
	}
	for _, ih := range hashes {
		out[ih] = s.scrapeLocked(ih, now)
	}
	return out
}

// sweep expires stale peers of every torrent and forgets torrents left with nothing worth
// keeping.
func (s *Server) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ih, t := range s.torrents {
		t.expire(now, s.cfg.PeerTTL)
		if len(t.peers) == 0 && t.downloaded == 0 {
			delete(s.torrents, ih)
		}
	}
}
