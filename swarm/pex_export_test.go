package swarm

import (
	"context"
	"time"
)

// NumCandidates is how many addresses the torrent may dial, for tests that bound the pool.
func (t *Torrent) NumCandidates() int {
	n := -1
	t.do(context.Background(), func() { n = len(t.cands) })
	return n
}

// WithPexInterval returns cfg with the time between ut_pex messages to a peer shortened.
func WithPexInterval(cfg TorrentConfig, d time.Duration) TorrentConfig {
	cfg.pexInterval = d
	return cfg
}

// NumV2Peers is how many connections speak a hybrid's v2 info-hash (BEP 52 hash messages).
func (t *Torrent) NumV2Peers() int {
	n := -1
	t.do(context.Background(), func() {
		n = 0
		for _, p := range t.peers.list {
			if p.v2 {
				n++
			}
		}
	})
	return n
}

// NumHashesSent is how many BEP 52 hashes messages the torrent has answered requests with.
func (t *Torrent) NumHashesSent() int {
	n := -1
	t.do(context.Background(), func() { n = t.v2.sent })
	return n
}

// WithDuplicateRace returns cfg with the window in which two connections with one peer
// count as dialed at once widened, for tests whose fake peer dials under load.
func WithDuplicateRace(cfg TorrentConfig, d time.Duration) TorrentConfig {
	cfg.duplicateRace = d
	return cfg
}

// WithTickEvery returns cfg with the torrent loop's tick interval changed, for tests that
// must show something happens without a tick.
func WithTickEvery(cfg TorrentConfig, d time.Duration) TorrentConfig {
	cfg.tickEvery = d
	return cfg
}

// Paced tells whether the picker paces the torrent's peers (a reader is about).
func (t *Torrent) Paced() bool {
	v := false
	t.do(context.Background(), func() { v = t.pk.Paced() })
	return v
}

// Unread has the torrent forget its last reader, as when reserveLinger has passed since.
func (t *Torrent) Unread() {
	t.do(context.Background(), func() {
		t.lastViewing = time.Time{}
		t.updateReserve(time.Now())
	})
}

// BatchBoosts is how many times a batch that held every request out deepened a peer's
// pipeline at once (noteBatch).
func (t *Torrent) BatchBoosts() int {
	n := -1
	t.do(context.Background(), func() { n = t.batchBoosts })
	return n
}
