package swarm

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"hash"
	"slices"
	"syscall"
	"time"

	"torrentfs/bitfield"
	"torrentfs/cache"
	"torrentfs/metainfo"
	"torrentfs/picker"
)

// diskWorkers is how many goroutines write blocks and verify pieces. Two keep a core
// hashing while the other writes; SHA-1 runs at ~1.5 GB/s a core and SHA-256 (v2-only
// pieces) at ~1 GB/s on this machine's CPU, well above what a swarm gives.
const diskWorkers = 2

// maxWriteBacklog bounds the received bytes waiting for the disk workers. Peers on a fast
// network deliver faster than one disk writes and hashes; past this bound fill requests
// nothing more, so the excess waits in the peers' sockets instead of our heap.
const maxWriteBacklog = 8 << 20

// saveEvery is how many newly verified pieces trigger a resume-file write.
const saveEvery = 256

// jobKind is what a disk worker is asked to do. The workers only execute: every decision
// (what is present, what to evict, whom to blame) is the loop's.
type jobKind uint8

const (
	jobWrite  jobKind = iota // write the received blocks of a piece that wait
	jobVerify                // hash a piece whose blocks are all written
	jobPunch                 // free a piece's bytes (evicted, failed or abandoned)
	jobUsage                 // measure disk use and free space (full disk)
	jobStat                  // stat the files for the resume file (first half of a save)
	jobSave                  // write the resume file (second half)
	jobHashes                // read a piece and hash its blocks with SHA-256 for a hash request
)

// diskJob is one unit of disk work.
type diskJob struct {
	kind  jobKind
	piece int
	// write: the piece's blocks, in the order they came.
	blocks []blockWrite
	// punch: whether the neighbours' shared file-system blocks may be freed too.
	freeBefore, freeAfter bool
	// save: the have set, taken on the loop after the stat.
	have  bitfield.Bitfield
	stats cache.FileStats
	// usage: measured to regrow a cache shrunk by a full disk, not after a failure.
	regrow bool
	// hashes: the request to answer once the piece's blocks are hashed (hashes.go).
	hashReq *hashServe
	// write: the piece's running SHA-1, fed with the blocks; verify: the finished one, nil
	// to read the piece back (pieceSum).
	sum *pieceSum
}

// blockWrite is a received block waiting for the disk.
type blockWrite struct {
	begin int
	data  []byte
	buf   *[]byte // returned to the pool after the write
	// hash the block too (blockread.go): its first hashLen bytes, the file's (the rest
	// is padding, outside the BEP 52 leaf); from is its sender.
	hashV2  bool
	hashLen int
	from    picker.PeerID
}

// pieceSum is the SHA-1 of a piece fed with its blocks as they are written, so that a
// piece whose blocks were written in order is verified without reading it back from disk
// (a read of the whole piece and a copy of it, 5% of a download's CPU). Blocks mostly come
// in order (a peer serves a piece's requests in the order we sent them), and a worker
// writes the blocks of a write job in order of their offsets. A gap (a block that came
// before the one ahead of it was written), a failed write, or a pad file in the piece
// (whose bytes the storage drops, so the piece on disk is not what the peers sent) breaks
// the sum, and the piece is read back as before. One write job of a piece is at a worker
// at a time (diskState.writing) and the verify job is queued after the last write is
// back, so the worker holding a job that carries the sum is its only user.
type pieceSum struct {
	h      hash.Hash
	next   int64 // bytes fed so far
	broken bool
}

// feed takes a block just written at begin, or breaks the sum.
func (s *pieceSum) feed(begin int, data []byte, err error) {
	if s.broken {
		return
	}
	if err != nil || int64(begin) != s.next {
		s.broken = true
		return
	}
	s.h.Write(data)
	s.next += int64(len(data))
}

type diskResult struct {
	job         diskJob
	ok          bool // verify: the hash matched
	bySum       bool // verify: told by the running SHA-1, without reading the piece back
	err         error
	used, avail int64 // usage
	stats       cache.FileStats
	leaves      []metainfo.Hash256 // hashes: the block hashes of the piece's file part
	sums        []metainfo.Hash256 // write: each block's SHA-256 where hashV2 asked for it
	written     int                // write: how many of the (sorted) blocks were written
}

// diskState is the loop's view of disk work: jobs not yet taken by a worker, writes not yet
// done per piece, pieces whose blocks are all in and wait for their writes to verify.
//
// Block writes wait apart from the other jobs, per piece: a worker takes all the waiting
// blocks of a piece at once, one job, and a piece has one such job at a worker at a time,
// so its blocks are written, and fed to its pieceSum, in order. At a few hundred MiB/s a
// job carries a dozen blocks or more (one hand-off to a worker and back instead of one per
// block); at a few MiB/s, one. Other jobs go first, in the order they came: they are few
// (a verify per piece, a punch per eviction) and a read may wait for them.
type diskState struct {
	queue   []diskJob            // jobs other than writes
	writes  map[int][]blockWrite // blocks waiting, per piece
	ready   []int                // pieces with blocks waiting and no write job at a worker, oldest first
	writing map[int]bool         // pieces with a write job at a worker
	offered bool                 // next offered a write job (of ready[0]), not queue[0]
	sums    map[int]*pieceSum    // running SHA-1 of pieces being written, until verified
	bySum   int                  // pieces checked by their running SHA-1 (tests read it)
	// punches counts punches queued and not yet done. Writes wait for them: the ledger
	// counts an evicted piece as gone once its punch is queued, so a write landing first
	// would put the cache over its bound on disk for a moment (seen at +256 KiB).
	punches       int
	writeBytes    int64 // block bytes received and not yet written: bounded by fill
	pendingWrites map[int]int
	awaiting      map[int]bool
	verifying     map[int]bool
	failed        map[int]error                  // pieces with a failed write: discarded once their writes drain
	contributors  map[int]map[picker.PeerID]bool // peers and web seeds that sent blocks of a piece
	usagePending  bool
	sinceSave     int
	saving        bool
}

func (d *diskState) init() {
	d.writes = make(map[int][]blockWrite)
	d.writing = make(map[int]bool)
	d.sums = make(map[int]*pieceSum)
	d.pendingWrites = make(map[int]int)
	d.awaiting = make(map[int]bool)
	d.verifying = make(map[int]bool)
	d.failed = make(map[int]error)
	d.contributors = make(map[int]map[picker.PeerID]bool)
}

// next returns the channel and job to offer the workers: the oldest other job, else the
// waiting blocks of the piece that has waited longest, unless a punch is pending; a nil
// channel when there is nothing to offer.
func (d *diskState) next(jobs chan diskJob) (chan diskJob, diskJob) {
	if len(d.queue) > 0 {
		d.offered = false
		return jobs, d.queue[0]
	}
	if len(d.ready) > 0 && d.punches == 0 {
		p := d.ready[0]
		d.offered = true
		return jobs, diskJob{kind: jobWrite, piece: p, blocks: d.writes[p], sum: d.sums[p]}
	}
	return nil, diskJob{}
}

// taken drops the job just handed to a worker.
func (d *diskState) taken() {
	if !d.offered {
		d.queue[0] = diskJob{}
		d.queue = d.queue[1:]
		return
	}
	p := d.ready[0]
	d.ready = d.ready[1:]
	delete(d.writes, p)
	d.writing[p] = true
}

// addWrite puts a block in line for the disk.
func (d *diskState) addWrite(piece int, b blockWrite) {
	if len(d.writes[piece]) == 0 && !d.writing[piece] {
		d.ready = append(d.ready, piece)
	}
	d.writes[piece] = append(d.writes[piece], b)
	d.writeBytes += int64(len(b.data))
	d.pendingWrites[piece]++
}

// written takes back a piece's write job: its next blocks may go.
func (d *diskState) written(piece int) {
	delete(d.writing, piece)
	if len(d.writes[piece]) > 0 {
		d.ready = append(d.ready, piece)
	}
}

// busy tells whether any disk work waits for a worker.
func (d *diskState) busy() bool { return len(d.queue) > 0 || len(d.ready) > 0 }

func (t *Torrent) diskWorker() {
	defer t.wg.Done()
	for {
		var job diskJob
		select {
		case job = <-t.diskJobs:
		case <-t.closing:
			return
		}
		res := diskResult{job: job}
		switch job.kind {
		case jobWrite:
			t.writeBlocks(job, &res)
		case jobVerify:
			if ok, done := t.checkSum(job.piece, job.sum); done {
				res.ok, res.bySum = ok, true
			} else {
				res.ok, res.err = t.store.HashPiece(job.piece)
			}
		case jobPunch:
			res.err = t.store.Punch(job.piece, job.freeBefore, job.freeAfter)
		case jobUsage:
			res.used, res.avail, res.err = t.store.DiskUsage()
		case jobStat:
			res.stats = t.store.StatFiles()
		case jobSave:
			res.err = t.store.SaveState(job.have, job.stats)
		case jobHashes:
			res.leaves, res.err = t.hashBlocks(job.piece, job.hashReq.fileBytes)
		}
		select {
		case t.diskResults <- res:
		case <-t.closing:
			return
		}
	}
}

// writeBlocks writes a piece's blocks in order of their offsets, feeding its pieceSum, on
// a disk worker; it stops at the first failure. Blocks that follow one another go to the
// storage in one vectored write.
func (t *Torrent) writeBlocks(job diskJob, res *diskResult) {
	slices.SortStableFunc(job.blocks, func(a, b blockWrite) int { return a.begin - b.begin })
	for i, b := range job.blocks {
		if b.hashV2 {
			if res.sums == nil {
				res.sums = make([]metainfo.Hash256, len(job.blocks))
			}
			res.sums[i] = metainfo.HashBlock(b.data[:min(b.hashLen, len(b.data))])
		}
	}
	var bufs [][]byte
	for i := 0; i < len(job.blocks); {
		j, end := i+1, job.blocks[i].begin+len(job.blocks[i].data)
		for j < len(job.blocks) && job.blocks[j].begin == end {
			end += len(job.blocks[j].data)
			j++
		}
		run := job.blocks[i:j]
		bufs = bufs[:0]
		for _, b := range run {
			bufs = append(bufs, b.data)
		}
		res.err = t.store.WriteBlocks(job.piece, run[0].begin, bufs)
		if job.sum != nil {
			for _, b := range run {
				job.sum.feed(b.begin, b.data, res.err)
			}
		}
		if res.err != nil {
			return
		}
		res.written = j
		i = j
	}
}

// queueWrite hands a received block to the disk workers.
func (t *Torrent) queueWrite(from picker.PeerID, piece, begin int, data []byte, buf *[]byte) {
	b := blockWrite{begin: begin, data: data, buf: buf}
	if t.hashWrite(piece) {
		b.hashV2, b.hashLen, b.from = true, t.leafBytes(piece, begin, len(data)), from
	}
	if t.disk.sums[piece] == nil {
		t.disk.sums[piece] = t.newPieceSum(piece)
	}
	t.disk.addWrite(piece, b)
	c := t.disk.contributors[piece]
	if c == nil {
		c = make(map[picker.PeerID]bool)
		t.disk.contributors[piece] = c
	}
	c[from] = true
}

// queuePunch frees piece i's bytes (and those of a neighbour's shared file-system block
// when the neighbour is idle); no block is written while a punch is pending.
func (t *Torrent) queuePunch(i int) {
	t.blocksGone(i) // its bytes go: no read may be released from them
	t.disk.punches++
	t.disk.queue = append(t.disk.queue, diskJob{kind: jobPunch, piece: i, freeBefore: t.ledger.Idle(i - 1), freeAfter: t.ledger.Idle(i + 1)})
}

// pieceReceived notes that every block of piece is in; it is verified once written.
func (t *Torrent) pieceReceived(piece int) {
	t.disk.awaiting[piece] = true
	t.maybeVerify(piece)
}

// maybeVerify queues the hash of a piece whose blocks are all written, or gives up a piece
// whose write failed once its last write is back.
func (t *Torrent) maybeVerify(piece int) {
	if t.disk.pendingWrites[piece] > 0 {
		return
	}
	if err, ok := t.disk.failed[piece]; ok {
		delete(t.disk.failed, piece)
		delete(t.disk.awaiting, piece)
		t.discardPiece(piece, err)
		return
	}
	if t.disk.awaiting[piece] {
		delete(t.disk.awaiting, piece)
		t.disk.verifying[piece] = true
		t.disk.queue = append(t.disk.queue, diskJob{kind: jobVerify, piece: piece, sum: t.disk.sums[piece]})
		delete(t.disk.sums, piece)
	}
}

// newPieceSum starts the running SHA-1 of a piece, broken from the start when the piece
// cannot be checked so: no v1 piece hashes (a v2-only torrent), or a pad file in it.
func (t *Torrent) newPieceSum(piece int) *pieceSum {
	if t.info.Pieces == nil {
		return &pieceSum{broken: true}
	}
	for _, sp := range t.info.Spans(t.info.PieceOffset(piece), t.info.PieceSize(piece)) {
		if t.info.Files[sp.File].Padding {
			return &pieceSum{broken: true}
		}
	}
	return &pieceSum{h: sha1.New()}
}

// checkSum checks a piece against the running SHA-1 of its writes, on a disk worker;
// done is false when the sum cannot tell and the piece must be read back.
func (t *Torrent) checkSum(piece int, s *pieceSum) (ok, done bool) {
	if s == nil || s.broken || s.next != t.info.PieceSize(piece) {
		return false, false
	}
	c, has := t.mi.PieceCheck(piece)
	if !has || c.V2 || c.Length != s.next {
		return false, false
	}
	return bytes.Equal(s.h.Sum(nil), c.Want[:sha1.Size]), true
}

// discardPiece gives up a partly or wholly written piece that is not to be trusted: its
// blocks are wanted again, its bytes freed. Nobody is blamed: err is our own storage's.
func (t *Torrent) discardPiece(piece int, err error) {
	delete(t.disk.contributors, piece)
	delete(t.disk.sums, piece)
	t.pk.PieceFailed(piece)
	t.ledger.Abort(piece)
	t.queuePunch(piece)
	if len(t.waiting[piece]) > 0 {
		t.checkReads()
	}
	if err != nil {
		t.log.WithError(err).WithField("piece", piece).Debug("piece discarded after a storage error")
	}
}

func (t *Torrent) handleDisk(r diskResult) {
	j := r.job
	switch j.kind {
	case jobWrite:
		t.writeDone(j, r)
	case jobVerify:
		if r.bySum {
			t.disk.bySum++
		}
		t.verifyDone(j.piece, r.ok, r.err)
	case jobPunch:
		t.disk.punches--
		if r.err != nil {
			t.log.WithError(r.err).WithField("piece", j.piece).Warn("a freed piece still takes disk space")
		}
	case jobUsage:
		t.disk.usagePending = false
		if r.err != nil {
			t.log.WithError(r.err).Warn("cannot measure the cache's disk")
			return
		}
		t.diskMeasured(r.used, r.avail, j.regrow)
	case jobStat:
		// The have set is taken now, after the stat: see cache.Storage.StatFiles.
		t.disk.queue = append(t.disk.queue, diskJob{kind: jobSave, have: t.ledger.Have(), stats: r.stats})
	case jobSave:
		t.disk.saving = false
		if r.err != nil {
			t.log.WithError(r.err).Warn("cannot write the resume file")
		}
	case jobHashes:
		t.hashesRead(j.hashReq, r.leaves, r.err)
	}
	t.fillAll()
}

// writeDone takes back a write job: its blocks are done with, written or not (a failed
// write fails the piece, which is discarded once its last write is back).
func (t *Torrent) writeDone(j diskJob, r diskResult) {
	t.disk.written(j.piece)
	for i, b := range j.blocks {
		t.disk.writeBytes -= int64(len(b.data))
		if i < r.written && b.hashV2 {
			t.blockWritten(j.piece, b.begin, r.sums[i], b.from)
		}
		if b.buf != nil {
			t.blockPool.Put(b.buf)
		}
	}
	if t.disk.pendingWrites[j.piece] -= len(j.blocks); t.disk.pendingWrites[j.piece] <= 0 {
		delete(t.disk.pendingWrites, j.piece)
	}
	if r.err != nil {
		if _, seen := t.disk.failed[j.piece]; !seen {
			t.disk.failed[j.piece] = r.err
		}
		t.storageFailed(fmt.Errorf("write piece %d: %w", j.piece, r.err))
	}
	t.maybeVerify(j.piece)
}

func (t *Torrent) verifyDone(piece int, ok bool, err error) {
	delete(t.disk.verifying, piece)
	contributors := t.disk.contributors[piece]
	delete(t.disk.contributors, piece)
	switch {
	case err != nil:
		// Our storage could not read back what we wrote: not the peers' fault.
		t.storageFailed(err)
		t.discardPiece(piece, err)
	case !ok:
		t.log.WithField("piece", piece).Debug("piece failed verification")
		pb := t.blk[piece]
		_, bad := t.blocksGone(piece)
		if pb != nil && !bad && pb.hashes != nil && pb.ok.Count() == len(pb.hashes) {
			if t.info.Pieces != nil {
				t.log.WithField("piece", piece).Error("the piece passed its v2 block hashes but failed its SHA-1: the torrent's v1 and v2 hashes disagree")
			} else {
				// v2-only: the blocks passed but the piece read back did not; our disk changed it.
				t.log.WithField("piece", piece).Error("the piece passed its v2 block hashes but not when read back from disk")
			}
		}
		t.discardPiece(piece, nil)
		if bad {
			t.webVerified(piece, contributors, false) // a web seed that sent the bad block rests
			break                                     // the block check named the sender: nobody else is blamed
		}
		if t.webVerified(piece, contributors, false) {
			// A web seed took part: it is rested, and the peers beside it are not blamed
			// for what is far more likely the origin's stale or changed file.
			break
		}
		for k := range contributors {
			p := t.peers.byKey[k]
			if p == nil {
				continue // gone since
			}
			p.strikes++
			// One bad piece can be bad luck shared with an honest peer; two are a pattern.
			if p.strikes >= 2 {
				t.ban(p, "sent data that failed verification")
			}
		}
	default:
		if _, bad := t.blocksGone(piece); bad {
			// A sender was banned for a block of a piece that is right: the block check
			// is wrong, not the peer.
			t.log.WithField("piece", piece).Error("the piece passed its hash after one of its blocks failed its v2 hash")
		}
		t.webVerified(piece, contributors, true)
		t.downloaded.Add(t.info.PieceSize(piece))
		t.admit(piece)
		if t.disk.sinceSave++; t.disk.sinceSave >= saveEvery && !t.disk.saving {
			t.disk.sinceSave, t.disk.saving = 0, true
			t.disk.queue = append(t.disk.queue, diskJob{kind: jobStat})
		}
	}
}

// isDiskFull tells a full disk or quota from other storage errors.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// storageFailed reacts to an error of our own storage. A full disk shrinks the cache to
// what the disk holds (or, for a download that must keep everything, stops it); a
// read-only file system stops downloading; other errors are logged and the piece fetched
// again. None of them is a peer's fault.
func (t *Torrent) storageFailed(err error) {
	switch {
	case isDiskFull(err) && !t.cfg.StopOnDiskFull:
		if !t.disk.usagePending {
			t.disk.usagePending = true
			t.disk.queue = append(t.disk.queue, diskJob{kind: jobUsage})
		}
	case isDiskFull(err):
		t.stopDownload(fmt.Errorf("disk full: %s has no space left for %s (%s of %s downloaded); free some space and run again to resume",
			t.store.Dir(), t.info.Name, humanSize(t.ledger.PresentBytes()), humanSize(t.info.TotalLength)))
	case errors.Is(err, syscall.EROFS):
		t.stopDownload(fmt.Errorf("%s is read-only: %w", t.store.Dir(), err))
	default:
		t.log.WithError(err).Warn("storage error")
	}
}

// stopDownload ends downloading for good on a storage failure; uploads go on.
func (t *Torrent) stopDownload(err error) {
	if t.err != nil {
		return
	}
	t.err = err
	if t.cfg.StopOnDiskFull {
		// The caller (get) reports Stats().Err as its one line; a second copy would only
		// clutter the terminal.
		t.log.Debug(err.Error())
	} else {
		t.log.Error(err.Error())
	}
	t.cancelRequests(t.pk.SetBackground(false))
	for _, p := range t.peers.list {
		t.setInterested(p, false)
	}
	t.failReads(t.err)
	t.publishStats(time.Now())
}

// humanSize prints n bytes for log lines.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
