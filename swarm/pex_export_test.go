package swarm

import "context"

// NumCandidates is how many addresses the torrent may dial, for tests that bound the pool.
func (t *Torrent) NumCandidates() int {
	n := -1
	t.do(context.Background(), func() { n = len(t.cands) })
	return n
}
