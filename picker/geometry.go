package picker

// BlockSize is the request length; it equals metainfo.BlockSize. The picker keeps its own
// copy of the geometry so that it imports nothing that reaches net or os.
const BlockSize = 16 << 10

// geometry is the piece and block layout of a torrent.
type geometry struct {
	pieceLen, totalLen int64
	numPieces          int
}

func newGeometry(pieceLen, totalLen int64) geometry {
	g := geometry{pieceLen: pieceLen, totalLen: totalLen}
	if pieceLen > 0 && totalLen > 0 {
		g.numPieces = int((totalLen + pieceLen - 1) / pieceLen)
	}
	return g
}

func (g geometry) pieceSize(i int) int64 {
	if i < 0 || i >= g.numPieces {
		return 0
	}
	if i == g.numPieces-1 {
		return g.totalLen - int64(i)*g.pieceLen
	}
	return g.pieceLen
}

func (g geometry) numBlocks(i int) int { return int((g.pieceSize(i) + BlockSize - 1) / BlockSize) }

func (g geometry) blockSize(i, b int) int {
	n := g.pieceSize(i) - int64(b)*BlockSize
	return int(max(min(n, BlockSize), 0))
}
