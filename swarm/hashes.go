package swarm

// BEP 52 hash requests for hybrid and v2-only torrents. A connection speaks v2 when the peer
// named the truncated v2 info-hash or took our offer to switch to it (the v2 reserved bit);
// every connection of a v2-only torrent does. On such a connection both sides may ask for
// merkle hashes of a file's tree.
//
// Serving: a request below the piece layer needs the piece's block hashes, which a disk
// worker reads and hashes (jobHashes); the loop then builds the answer with the uncles from
// the torrent's piece layer. Requests at or above the piece layer are answered from the
// torrent alone. A peer may have maxHashJobs requests being read and maxHashServesPerTick
// answered a second; beyond that, and for anything we cannot answer, it gets a hash reject.
//
// Asking: fetchBlockHashes, on the loop, gets a piece's 16 KiB block hashes from a v2 peer
// that has the piece, checks them against the piece layer (metainfo.FileTree) and keeps them
// in v2State.blocks. A reject, a timeout or a lost peer moves the request to another peer; a
// peer whose hashes fail the proof is struck like a peer that sent bad data.

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"torrentfs/metainfo"
	"torrentfs/swarm/wire"
)

const (
	// hashTimeout is how long a peer has to answer a hash request before we ask another.
	hashTimeout = 10 * time.Second
	// maxHashJobs bounds a peer's hash requests being read from disk for it at once.
	maxHashJobs = 4
	// maxHashServesPerTick bounds the hash requests we answer a peer in a second.
	maxHashServesPerTick = 64
	// maxHashAsks bounds our unanswered hash requests to one peer.
	maxHashAsks = 8
	// hashCopies is how many peers are asked for one piece's block hashes at once: the
	// answer is a few KiB, and a read waits for it, so the first of two peers' answers is
	// taken (the other's is dropped when it comes) rather than all of one peer's queue
	// and quota tick.
	hashCopies = 2
)

// ErrNoBlockHashes: no connected v2 peer that has the piece gave its block hashes (or the
// torrent has none: a v1 torrent, a piece of padding).
var ErrNoBlockHashes = errors.New("no peer gave the piece's block hashes")

// v2State is the loop's BEP 52 state; all of it is loop-owned.
type v2State struct {
	byRoot map[metainfo.Hash256]int   // file index by pieces root
	trees  map[int]*metainfo.FileTree // by file index, built on first use
	blocks map[int][]metainfo.Hash256 // verified block hashes by torrent piece
	asks   map[int]*hashFetch         // our hash requests by torrent piece
	served map[*peerConn]int          // hash requests answered per peer this tick
	sent   int                        // hashes messages sent, for tests and logs
}

func (s *v2State) init(mi *metainfo.MetaInfo, hybrid bool) {
	s.trees = make(map[int]*metainfo.FileTree)
	s.blocks = make(map[int][]metainfo.Hash256)
	s.asks = make(map[int]*hashFetch)
	s.served = make(map[*peerConn]int)
	s.byRoot = make(map[metainfo.Hash256]int)
	if !hybrid {
		return
	}
	for k, f := range mi.Info.Files {
		if _, dup := s.byRoot[f.PiecesRoot]; !dup && !f.PiecesRoot.IsZero() {
			s.byRoot[f.PiecesRoot] = k
		}
	}
}

// hashFetch is one piece's block hashes being asked for.
type hashFetch struct {
	piece     int // of the torrent
	filePiece int // of its file
	tree      *metainfo.FileTree
	fields    wire.HashRequestFields
	peers     []*peerConn // asked now (up to hashCopies); none while waiting for a peer with room
	asked     time.Time   // when the last of them was asked
	since     time.Time   // made, or last sent: with no peer to ask, it waits hashTimeout for one
	tried     map[*peerConn]bool
	waiters   []func([]metainfo.Hash256, error)
}

// hashServe is a hash request being answered: the disk worker reads the piece's file part.
type hashServe struct {
	piece     int // the torrent piece hashed
	p         *peerConn
	fields    wire.HashRequestFields
	r         metainfo.HashRange
	tree      *metainfo.FileTree
	filePiece int
	fileBytes int64 // the file's bytes in the piece
}

// fileTree returns file k's merkle tree, built once.
func (t *Torrent) fileTree(k int) (*metainfo.FileTree, error) {
	if ft := t.v2.trees[k]; ft != nil {
		return ft, nil
	}
	ft, err := t.mi.FileTree(&t.info.Files[k])
	if err != nil {
		return nil, err
	}
	t.v2.trees[k] = ft
	return ft, nil
}

// firstPiece is the torrent piece file k starts in (on a boundary: v2 aligns files).
func (t *Torrent) firstPiece(k int) int { return int(t.info.Files[k].Offset / t.info.PieceLength) }

func hashRange(h wire.HashRequestFields) metainfo.HashRange {
	return metainfo.HashRange{BaseLayer: int(h.BaseLayer), Index: int(h.Index), Length: int(h.Length), ProofLayers: int(h.ProofLayers)}
}

// onHashRequest answers a peer's hash request, or queues the read it needs.
func (t *Torrent) onHashRequest(p *peerConn, payload []byte) {
	if !p.v2 {
		return // not a v2 connection: an unknown message to it, ignored as before BEP 52
	}
	h, err := wire.ParseHashRequest(payload)
	if err != nil {
		t.disconnect(p, err.Error())
		return
	}
	reject := func(why string) {
		p.log.WithField("request", h.String()).Debug("hash reject: ", why)
		p.send(h.Message(wire.HashReject))
	}
	if err := h.Check(); err != nil {
		reject(err.Error())
		return
	}
	if t.v2.served[p] >= maxHashServesPerTick {
		reject("too many hash requests")
		if p.floodWarnings++; p.floodWarnings > floodLimit {
			t.disconnect(p, "hash request flood")
		}
		return
	}
	t.v2.served[p]++
	k, ok := t.v2.byRoot[h.PiecesRoot]
	if !ok {
		reject("no such file")
		return
	}
	ft, err := t.fileTree(k)
	if err != nil {
		reject(err.Error())
		return
	}
	r := hashRange(h)
	if err := ft.Check(r); err != nil {
		reject(err.Error())
		return
	}
	pf, need, ok := ft.NeedsPiece(r)
	switch {
	case !ok:
		reject("the hashes span several pieces")
		return
	case !need:
		t.sendHashes(p, h, ft, r, -1, nil)
		return
	}
	piece := t.firstPiece(k) + pf
	if !t.ledger.Present(piece) {
		reject("we do not have the piece")
		return
	}
	if leaves, ok := t.v2.blocks[piece]; ok {
		// Hashed before (served, or fetched and checked): no disk read.
		t.sendHashes(p, h, ft, r, pf, leaves)
		return
	}
	if p.hashJobs >= maxHashJobs {
		reject("too many hash requests being read")
		return
	}
	p.hashJobs++
	fileBytes := min(t.info.PieceLength, t.info.Files[k].Length-int64(pf)*t.info.PieceLength)
	t.disk.queue = append(t.disk.queue, diskJob{kind: jobHashes, piece: piece,
		hashReq: &hashServe{p: p, fields: h, r: r, tree: ft, piece: piece, filePiece: pf, fileBytes: fileBytes}})
}

// hashBlocks reads the first n bytes of piece block by block and returns their SHA-256
// hashes. It runs on a disk worker; the piece may be evicted meanwhile (errNotPresent).
func (t *Torrent) hashBlocks(piece int, n int64) ([]metainfo.Hash256, error) {
	bp := t.blockPool.Get().(*[]byte)
	defer t.blockPool.Put(bp)
	buf := (*bp)[:cap(*bp)]
	if len(buf) < metainfo.BlockSize {
		buf = make([]byte, metainfo.BlockSize)
		*bp = buf[:0]
	}
	out := make([]metainfo.Hash256, 0, (n+metainfo.BlockSize-1)/metainfo.BlockSize)
	for off := int64(0); off < n; off += metainfo.BlockSize {
		b := buf[:min(metainfo.BlockSize, n-off)]
		if err := t.readBlock(piece, int(off), b); err != nil {
			return nil, err
		}
		out = append(out, metainfo.HashBlock(b))
	}
	return out, nil
}

// hashesRead answers a hash request once its piece is hashed.
func (t *Torrent) hashesRead(s *hashServe, leaves []metainfo.Hash256, err error) {
	s.p.hashJobs--
	if !t.peers.has(s.p) {
		return
	}
	if err != nil {
		s.p.log.WithError(err).Debug("hash reject: cannot read the piece")
		s.p.send(s.fields.Message(wire.HashReject))
		return
	}
	t.keepBlockHashes(s.piece, leaves)
	t.sendHashes(s.p, s.fields, s.tree, s.r, s.filePiece, leaves)
}

// maxKeptBlockHashes bounds the pieces whose block hashes are kept (256 hashes of 32 bytes
// for a 4 MiB piece: 2 MiB for all of them at most).
const maxKeptBlockHashes = 256

// keepBlockHashes remembers piece's block hashes, forgetting another piece's past the bound.
func (t *Torrent) keepBlockHashes(piece int, hs []metainfo.Hash256) {
	if _, ok := t.v2.blocks[piece]; !ok && len(t.v2.blocks) >= maxKeptBlockHashes {
		for k := range t.v2.blocks {
			if t.blk[k] == nil { // not under a read now
				delete(t.v2.blocks, k)
				break
			}
		}
	}
	t.v2.blocks[piece] = hs
}

func (t *Torrent) sendHashes(p *peerConn, h wire.HashRequestFields, ft *metainfo.FileTree, r metainfo.HashRange, filePiece int, leaves []metainfo.Hash256) {
	ans, err := ft.Answer(r, filePiece, leaves)
	if err != nil {
		p.log.WithError(err).Debug("hash reject")
		p.send(h.Message(wire.HashReject))
		return
	}
	out := make([][wire.HashLen]byte, len(ans))
	for i := range ans {
		out[i] = ans[i]
	}
	p.sendAhead(wire.HashesMessage(h, out)) // ahead of queued uploads: a read waits for it
	t.v2.sent++
}

// fetchBlockHashes delivers piece's verified 16 KiB block hashes to done, on the loop: at
// once when they are known (v2State.blocks), else once a peer's answer passes the proof, or
// ErrNoBlockHashes when no peer gives them. The hashes cover the piece's part of its file
// (metainfo.FileTree.PieceBlocks), not the padding after a file's last piece.
func (t *Torrent) fetchBlockHashes(piece int, done func([]metainfo.Hash256, error)) {
	if hs, ok := t.v2.blocks[piece]; ok {
		done(hs, nil)
		return
	}
	if f := t.v2.asks[piece]; f != nil {
		f.waiters = append(f.waiters, done)
		return
	}
	k, pf, ok := t.mi.V2Piece(piece)
	if !ok || t.v2ih == (metainfo.Hash{}) {
		done(nil, ErrNoBlockHashes)
		return
	}
	ft, err := t.fileTree(k)
	if err != nil {
		done(nil, err)
		return
	}
	r, ok := ft.BlockRequest(pf)
	if !ok {
		// One block in the piece: its hash is the piece hash the torrent holds.
		hs := []metainfo.Hash256{ft.PieceHash(pf)}
		t.keepBlockHashes(piece, hs)
		done(hs, nil)
		return
	}
	f := &hashFetch{piece: piece, filePiece: pf, tree: ft, tried: map[*peerConn]bool{}, waiters: []func([]metainfo.Hash256, error){done},
		fields: wire.HashRequestFields{PiecesRoot: ft.Root, BaseLayer: uint32(r.BaseLayer), Index: uint32(r.Index),
			Length: uint32(r.Length), ProofLayers: uint32(r.ProofLayers)}}
	t.v2.asks[piece] = f
	f.since = time.Now()
	t.askHashes(f, f.since)
}

// askHashes sends f's request to the v2 peers with the piece likely to answer first (the
// shortest queue at its rate, plus its round trip), up to hashCopies at once, or leaves it
// waiting (the tick tries again) while such peers are all busy or for hashTimeout for one
// to come (a peer connecting, or announcing the piece), or fails it.
func (t *Torrent) askHashes(f *hashFetch, now time.Time) {
	type cand struct {
		p   *peerConn
		eta time.Duration
	}
	var cs []cand
	busy := false
	for _, p := range t.peers.list {
		if !p.v2 || f.tried[p] || slices.Contains(f.peers, p) || !(p.hasAll || p.has.Has(f.piece)) {
			continue
		}
		if p.hashAsks >= maxHashAsks {
			busy = true
			continue
		}
		eta := t.pk.RTT(p.key)
		if r := p.downRate.recent(); r > 0 {
			eta += time.Duration(float64(t.pk.Outstanding(p.key)*metainfo.BlockSize) / r * float64(time.Second))
		}
		cs = append(cs, cand{p, eta})
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return cmp.Compare(a.eta, b.eta) })
	for _, c := range cs {
		if len(f.peers) >= hashCopies {
			break
		}
		f.peers = append(f.peers, c.p)
		f.asked, f.since = now, now
		c.p.hashAsks++
		t.trace(c.p, "hash request", f.piece, 0)
		c.p.send(f.fields.Message(wire.HashRequest))
	}
	if len(f.peers) == 0 && !busy && now.Sub(f.since) >= hashTimeout {
		t.finishFetch(f, nil, ErrNoBlockHashes)
	}
}

func (t *Torrent) finishFetch(f *hashFetch, hs []metainfo.Hash256, err error) {
	delete(t.v2.asks, f.piece)
	for _, p := range f.peers {
		p.hashAsks-- // its answer, if it comes, is one we no longer wait for
	}
	f.peers = nil
	for _, w := range f.waiters {
		w(hs, err)
	}
}

// askedOf finds our request to p that h answers.
func (t *Torrent) askedOf(p *peerConn, h wire.HashRequestFields) *hashFetch {
	for _, f := range t.v2.asks {
		if f.fields == h && slices.Contains(f.peers, p) {
			return f
		}
	}
	return nil
}

// answered takes f off p, to go to another peer or be done.
func (f *hashFetch) answered(p *peerConn) {
	p.hashAsks--
	f.peers = slices.DeleteFunc(f.peers, func(q *peerConn) bool { return q == p })
	f.tried[p] = true
}

// onHashes checks a peer's answer to our request.
func (t *Torrent) onHashes(p *peerConn, payload []byte) {
	if !p.v2 {
		return
	}
	h, hs, err := wire.ParseHashes(payload)
	if err != nil {
		t.disconnect(p, err.Error())
		return
	}
	f := t.askedOf(p, h)
	if f == nil {
		p.log.WithField("request", h.String()).Debug("hashes we did not ask for (or gave up on)")
		return
	}
	f.answered(p)
	t.trace(p, "hashes", f.piece, 0)
	leaves := make([]metainfo.Hash256, len(hs))
	for i := range hs {
		leaves[i] = hs[i]
	}
	blocks, err := f.tree.VerifyBlockHashes(f.filePiece, leaves)
	if err != nil {
		p.log.WithError(err).WithField("piece", f.piece).Info("peer sent block hashes that fail the proof")
		p.strikes++
		if p.strikes >= 2 {
			t.ban(p, "sent hashes that failed verification")
		}
		t.askHashes(f, time.Now())
		return
	}
	t.keepBlockHashes(f.piece, blocks)
	t.finishFetch(f, blocks, nil)
}

// onHashReject moves the rejected request to another peer.
func (t *Torrent) onHashReject(p *peerConn, payload []byte) {
	if !p.v2 {
		return
	}
	h, err := wire.ParseHashRequest(payload)
	if err != nil {
		t.disconnect(p, err.Error())
		return
	}
	if f := t.askedOf(p, h); f != nil {
		f.answered(p)
		t.askHashes(f, time.Now())
	}
}

// hashPeerGone moves the requests a lost peer held to others.
func (t *Torrent) hashPeerGone(p *peerConn) {
	delete(t.v2.served, p)
	for _, f := range t.v2.asks {
		if slices.Contains(f.peers, p) {
			f.answered(p)
			t.askHashes(f, time.Now())
		}
	}
}

// retryHashAsks sends the hash requests that v2 peer p may answer: those waiting for a
// peer, and those asked of fewer than hashCopies (a request sent while only one peer could
// answer it, which may be one that never does, must not wait hashTimeout for the next).
func (t *Torrent) retryHashAsks(p *peerConn) {
	if !p.v2 || len(t.v2.asks) == 0 || !t.peers.has(p) {
		return
	}
	now := time.Now()
	for _, f := range t.v2.asks {
		if len(f.peers) < hashCopies {
			t.askHashes(f, now)
		}
	}
}

// hashTick gives up on requests unanswered for hashTimeout and retries waiting ones.
func (t *Torrent) hashTick(now time.Time) {
	clear(t.v2.served)
	for _, f := range t.v2.asks {
		if len(f.peers) > 0 && now.Sub(f.asked) > hashTimeout {
			for _, p := range slices.Clone(f.peers) {
				p.log.WithField("piece", f.piece).Debug("hash request timed out")
				f.answered(p)
			}
		}
		if len(f.peers) < hashCopies {
			t.askHashes(f, now)
		}
	}
}

func (t *Torrent) failHashFetches(err error) {
	for _, f := range t.v2.asks {
		t.finishFetch(f, nil, err)
	}
}

// BlockHashes returns the SHA-256 hashes of piece's 16 KiB blocks (BEP 52 leaves), fetched
// from a v2 peer and checked against the torrent's piece layer, for a v2 or hybrid torrent; see
// fetchBlockHashes. It runs on the loop.
func (t *Torrent) BlockHashes(ctx context.Context, piece int) ([]metainfo.Hash256, error) {
	type result struct {
		hs  []metainfo.Hash256
		err error
	}
	ch := make(chan result, 1)
	if !t.do(ctx, func() {
		t.fetchBlockHashes(piece, func(hs []metainfo.Hash256, err error) { ch <- result{hs, err} })
	}) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, ErrClosed
	}
	select {
	case r := <-ch:
		return r.hs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.done:
		return nil, ErrClosed
	}
}
