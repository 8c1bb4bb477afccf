package swarm

import "context"

// PiecesCheckedBySum counts the pieces verified by the SHA-1 of their writes, without a
// read back from disk (pieceSum).
func (t *Torrent) PiecesCheckedBySum() int {
	n := -1
	t.do(context.Background(), func() { n = t.disk.bySum })
	return n
}
