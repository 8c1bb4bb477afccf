package swarm

import (
	"torrentfs/bitfield"
	"torrentfs/metainfo"
	"torrentfs/picker"
)

// Per-block release (BEP 52): a read of a hybrid or v2-only torrent waiting for a piece does
// not have to wait for the whole piece and its hash. The loop asks a v2 peer for the block hashes
// of each piece under the read (hashes.go, checked against the torrent's piece layer),
// has the disk workers hash each block of those pieces as they write it, and answers the
// read once every block under its bytes is written and matches its hash, while the rest of
// the piece keeps coming. The blocks under the read are requested before the piece's
// others (picker.PreferBlocks). A block that fails its hash names its sender exactly: that
// peer is banned, and only that peer.
//
// All of it is loop-owned: t.blk holds, per piece a read waits for, the block hashes once
// known, the sums of blocks written before they were, and which blocks are verified. An
// entry goes when its piece is verified whole or discarded.

// pieceBlocks is the per-block state of one piece under a read.
type pieceBlocks struct {
	hashes   []metainfo.Hash256 // the blocks' hashes; nil until fetched
	failed   bool               // no peer gave them: the piece is read whole, as in v1
	fetching bool
	sums     map[int]blockSum // blocks written before the hashes came
	ok       bitfield.Bitfield
	bad      bool          // a block failed its hash
	badFrom  picker.PeerID // its sender (a peer or a web seed)
}

type blockSum struct {
	sum  metainfo.Hash256
	from picker.PeerID
}

// perBlock tells whether reads of this torrent may be released block by block.
func (t *Torrent) perBlock() bool { return t.v2ih != (metainfo.Hash{}) }

// watchBlocks prepares per-block release for a read waiting for piece i, bytes [lo, hi) of
// the torrent: the blocks under it go first, and the piece's block hashes are asked for.
func (t *Torrent) watchBlocks(i int, lo, hi int64) {
	start := t.info.PieceOffset(i)
	stale := t.pk.PreferBlocks(i, int(max(lo-start, 0)/metainfo.BlockSize), int((min(hi, start+t.info.PieceSize(i))-1-start)/metainfo.BlockSize))
	t.cancelRequests(stale) // queued ahead of the read's blocks; the refill puts those first
	for _, r := range stale {
		t.pk.Cancelled(r.Peer, r.Block)
	}
	pb := t.blk[i]
	if pb == nil {
		pb = &pieceBlocks{sums: map[int]blockSum{}, ok: bitfield.New(t.info.NumBlocks(i))}
		t.blk[i] = pb
	}
	if pb.hashes != nil || pb.failed || pb.fetching {
		return
	}
	pb.fetching = true
	t.fetchBlockHashes(i, func(hs []metainfo.Hash256, err error) { t.blockHashesIn(i, pb, hs, err) })
}

// blockHashesIn takes a piece's block hashes (or the failure to get them) and checks the
// blocks written meanwhile.
func (t *Torrent) blockHashesIn(i int, pb *pieceBlocks, hs []metainfo.Hash256, err error) {
	if t.blk[i] != pb {
		return // the piece was verified or discarded meanwhile
	}
	pb.fetching = false
	if err != nil {
		pb.failed = true
		t.log.WithError(err).WithField("piece", i).Debug("no block hashes: the read waits for the whole piece")
		return
	}
	pb.hashes = hs
	for b, s := range pb.sums {
		t.checkBlock(i, pb, b, s.sum, s.from)
	}
	pb.sums = map[int]blockSum{}
	t.releaseBlocks(i, pb)
}

// hashWrite tells whether a block of piece i should be hashed as it is written.
func (t *Torrent) hashWrite(i int) bool {
	pb := t.blk[i]
	return pb != nil && !pb.failed
}

// leafBytes is how many of the n bytes at begin in piece i are its file's: a file's last
// block may be short, and what follows it in the piece (BEP 47 padding, zeros on the wire)
// is not under its BEP 52 leaf hash.
func (t *Torrent) leafBytes(i, begin, n int) int {
	k, _, ok := t.mi.V2Piece(i)
	if !ok {
		return n
	}
	f := &t.info.Files[k]
	return int(max(0, min(int64(n), f.Offset+f.Length-t.info.PieceOffset(i)-int64(begin))))
}

// blockWritten runs when a hashed block is on disk.
func (t *Torrent) blockWritten(i, begin int, sum metainfo.Hash256, from picker.PeerID) {
	pb := t.blk[i]
	if pb == nil || pb.failed {
		return
	}
	b := begin / metainfo.BlockSize
	if pb.hashes == nil {
		pb.sums[b] = blockSum{sum, from}
		return
	}
	t.checkBlock(i, pb, b, sum, from)
	t.releaseBlocks(i, pb)
}

func (t *Torrent) checkBlock(i int, pb *pieceBlocks, b int, sum metainfo.Hash256, from picker.PeerID) {
	if b >= len(pb.hashes) {
		return // padding past the file's end: no hash, and no read wants it
	}
	if sum == pb.hashes[b] {
		pb.ok.Set(b)
		return
	}
	// The piece will fail its hash too; the sender is known, so only it is blamed.
	pb.bad, pb.badFrom = true, from
	if p := t.peers.byKey[from]; p != nil {
		t.ban(p, "sent a block that failed its v2 hash")
	}
	t.log.WithField("piece", i).Warnf("block %d failed its v2 hash", b)
}

// releaseBlocks answers the reads waiting for piece i whose bytes in it are all verified.
func (t *Torrent) releaseBlocks(i int, pb *pieceBlocks) {
	ws := t.waiting[i]
	keep := ws[:0]
	start := t.info.PieceOffset(i)
	for _, r := range ws {
		lo, hi := max(r.off, start), min(r.end, start+t.info.PieceSize(i))
		covered := hi > lo
		for b := int((lo - start) / metainfo.BlockSize); covered && int64(b)*metainfo.BlockSize < hi-start; b++ {
			covered = pb.ok.Has(b)
		}
		if !covered {
			keep = append(keep, r)
			continue
		}
		t.log.WithField("piece", i).Debugf("read of %d bytes at %d released by verified blocks, piece incomplete", r.end-r.off, r.off)
		t.blockReleases++
		if r.missing--; r.missing == 0 {
			t.cancelRequests(t.pk.SetWants(r.id, nil))
			t.answer(r, nil)
		}
	}
	if len(keep) == 0 {
		delete(t.waiting, i)
	} else {
		t.waiting[i] = keep
	}
}

// blocksGone drops piece i's per-block state: verified whole, or discarded (its written
// blocks are gone). It returns the sender of a block that failed its hash, if any.
func (t *Torrent) blocksGone(i int) (picker.PeerID, bool) {
	pb := t.blk[i]
	if pb == nil {
		return 0, false
	}
	delete(t.blk, i)
	return pb.badFrom, pb.bad
}
