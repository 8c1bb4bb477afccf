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
	jobWrite  jobKind = iota // write a received block
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
	begin int
	data  []byte
	buf   *[]byte // returned to the pool after the write
	// punch: whether the neighbours' shared file-system blocks may be freed too.
	freeBefore, freeAfter bool
	// save: the have set, taken on the loop after the stat.
	have  bitfield.Bitfield
	stats cache.FileStats
	// usage: measured to regrow a cache shrunk by a full disk, not after a failure.
	regrow bool
	// hashes: the request to answer once the piece's blocks are hashed (hashes.go).
	hashReq *hashServe
	// write: hash the block too (blockread.go); from is its sender.
	hashV2 bool
	from   picker.PeerID
	// write: the piece's running SHA-1, fed with the block; verify: the finished one, nil
	// to read the piece back (pieceSum).
	sum *pieceSum
}

// pieceSum is the SHA-1 of a piece fed with its blocks as they are written, so that a
// piece whose blocks were written in order is verified without reading it back from disk
// (a read of the whole piece and a copy of it, 5% of a download's CPU). The loop writes a
// piece's blocks in order (writeOrder): a block that came before the one ahead of it
// waits in the queue for it, while the blocks waiting for the disk take less than half
// their bound. A block written out of order all the same (the bound, or a read waiting
// for the piece block by block), a failed write, or a pad file in the piece (whose bytes
// the storage drops, so the piece on disk is not what the peers sent) breaks the sum, and
// the piece is read back as before. Only one write of a piece is at a worker at a time
// (diskState.writing) and the verify job is queued after the last write is back, so the
// worker holding a job that carries the sum is its only user.
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
	sum         metainfo.Hash256   // write with hashV2: the block's SHA-256
}

// diskState is the loop's view of disk work: jobs not yet taken by a worker, writes not yet
// done per piece, pieces whose blocks are all in and wait for their writes to verify, and
// the fences that keep writes off the bytes a punch is freeing.
type diskState struct {
	queue []diskJob
	held  []diskJob // writes to fenced pieces, in arrival order
	fence map[int]int
	// writing holds the pieces with a write at a worker: the next write of such a piece
	// waits for it, so that its blocks are written, and hashed (sums), in order.
	writing map[int]bool
	sums    map[int]*pieceSum // running SHA-1 of pieces being written, until verified
	order   map[int]*writeOrder
	offered int // the index in queue of the job next offered
	bySum   int // pieces checked by their running SHA-1 (tests read it)
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
	d.fence = make(map[int]int)
	d.writing = make(map[int]bool)
	d.sums = make(map[int]*pieceSum)
	d.order = make(map[int]*writeOrder)
	d.pendingWrites = make(map[int]int)
	d.awaiting = make(map[int]bool)
	d.verifying = make(map[int]bool)
	d.failed = make(map[int]error)
	d.contributors = make(map[int]map[picker.PeerID]bool)
}

// writeOrder is where the next block of a piece must start for its writes to stay in
// order (pieceSum); keep is false once that no longer matters.
type writeOrder struct {
	next int
	keep bool
}

// next returns the channel and job to offer the workers, setting aside writes to fenced
// pieces and passing over writes of pieces with a write at a worker, and writes that
// would come before the one ahead of them (pieceSum); a nil channel when there is nothing
// to offer.
func (d *diskState) next(jobs chan diskJob) (chan diskJob, diskJob) {
	for i := 0; i < len(d.queue); {
		j := d.queue[i]
		if j.kind == jobWrite {
			if d.fence[j.piece] != 0 || d.punches != 0 {
				d.held = append(d.held, j)
				d.remove(i)
				continue
			}
			if d.writing[j.piece] || d.waitsForEarlier(j) {
				i++
				continue
			}
		}
		d.offered = i
		return jobs, j
	}
	return nil, diskJob{}
}

// waitsForEarlier tells whether write j should wait for the block before it.
func (d *diskState) waitsForEarlier(j diskJob) bool {
	o := d.order[j.piece]
	return o != nil && o.keep && j.begin != o.next && !j.hashV2 && d.writeBytes < maxWriteBacklog/2
}

// taken drops the job just handed to a worker.
func (d *diskState) taken() {
	if j := d.queue[d.offered]; j.kind == jobWrite {
		d.writing[j.piece] = true
		if o := d.order[j.piece]; o != nil {
			if j.begin == o.next {
				o.next += len(j.data)
			} else {
				o.keep = false // the sum is broken: no use waiting any more
			}
		}
	}
	d.remove(d.offered)
}

// remove drops queue[i]; the head goes without moving the rest.
func (d *diskState) remove(i int) {
	if i == 0 {
		d.queue[0] = diskJob{}
		d.queue = d.queue[1:]
		return
	}
	d.queue = slices.Delete(d.queue, i, i+1)
}

// unfence lifts a done punch's fences and puts the writes they (or the punches still to be
// done) held back in front of the queue.
func (d *diskState) unfence(j diskJob) {
	for _, i := range fenced(j) {
		if d.fence[i]--; d.fence[i] <= 0 {
			delete(d.fence, i)
		}
	}
	var back []diskJob
	d.punches--
	d.held = slices.DeleteFunc(d.held, func(h diskJob) bool {
		if d.fence[h.piece] == 0 && d.punches == 0 {
			back = append(back, h)
			return true
		}
		return false
	})
	if len(back) > 0 {
		d.queue = append(back, d.queue...)
	}
}

// fenced lists the pieces a punch job keeps writes away from.
func fenced(j diskJob) []int {
	out := []int{j.piece}
	if j.freeBefore {
		out = append(out, j.piece-1)
	}
	if j.freeAfter {
		out = append(out, j.piece+1)
	}
	return out
}

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
			if job.hashV2 {
				res.sum = metainfo.HashBlock(job.data)
			}
			res.err = t.store.WriteBlock(job.piece, job.begin, job.data)
			if job.sum != nil {
				job.sum.feed(job.begin, job.data, res.err)
			}
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

// queueWrite hands a received block to the disk workers.
func (t *Torrent) queueWrite(from picker.PeerID, piece, begin int, data []byte, buf *[]byte) {
	j := diskJob{kind: jobWrite, piece: piece, begin: begin, data: data, buf: buf}
	if t.hashWrite(piece) {
		j.hashV2, j.from = true, from
	}
	j.sum = t.disk.sums[piece]
	if j.sum == nil {
		j.sum = t.newPieceSum(piece)
		t.disk.sums[piece] = j.sum
		t.disk.order[piece] = &writeOrder{keep: !j.sum.broken} // broken from the start: read only here, before any worker has it
	}
	t.disk.queue = append(t.disk.queue, j)
	t.disk.writeBytes += int64(len(data))
	t.disk.pendingWrites[piece]++
	c := t.disk.contributors[piece]
	if c == nil {
		c = make(map[picker.PeerID]bool)
		t.disk.contributors[piece] = c
	}
	c[from] = true
}

// queuePunch frees piece i's bytes, fencing writes off it and off any neighbour whose
// shared file-system block the punch may free.
func (t *Torrent) queuePunch(i int) {
	t.blocksGone(i) // its bytes go: no read may be released from them
	j := diskJob{kind: jobPunch, piece: i, freeBefore: t.ledger.Idle(i - 1), freeAfter: t.ledger.Idle(i + 1)}
	for _, k := range fenced(j) {
		t.disk.fence[k]++
	}
	t.disk.punches++
	t.disk.queue = append(t.disk.queue, j)
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
		delete(t.disk.order, piece)
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
	delete(t.disk.order, piece)
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
		t.writeDone(j, r.err)
		if j.hashV2 && r.err == nil {
			t.blockWritten(j.piece, j.begin, r.sum, j.from)
		}
	case jobVerify:
		if r.bySum {
			t.disk.bySum++
		}
		t.verifyDone(j.piece, r.ok, r.err)
	case jobPunch:
		t.disk.unfence(j)
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

func (t *Torrent) writeDone(j diskJob, err error) {
	delete(t.disk.writing, j.piece)
	t.disk.writeBytes -= int64(len(j.data))
	if j.buf != nil {
		t.blockPool.Put(j.buf)
	}
	if t.disk.pendingWrites[j.piece]--; t.disk.pendingWrites[j.piece] <= 0 {
		delete(t.disk.pendingWrites, j.piece)
	}
	if err != nil {
		if _, seen := t.disk.failed[j.piece]; !seen {
			t.disk.failed[j.piece] = err
		}
		t.storageFailed(fmt.Errorf("write piece %d: %w", j.piece, err))
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
		t.blocksGone(piece)
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
