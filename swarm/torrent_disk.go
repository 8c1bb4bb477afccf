package swarm

import (
	"errors"
	"fmt"
	"syscall"
)

// diskWorkers is how many goroutines write blocks and verify pieces. Two keep a core
// hashing while the other writes; SHA-1 runs at ~1 GB/s a core, well above what a swarm gives.
const diskWorkers = 2

// maxWriteBacklog bounds the received bytes waiting for the disk workers. Peers on a fast
// network deliver faster than one disk writes and hashes; past this bound fill requests
// nothing more, so the excess waits in the peers' sockets instead of our heap.
const maxWriteBacklog = 8 << 20

// diskJob is a block to write or a piece to verify.
type diskJob struct {
	verify  bool
	discard bool // free an abandoned, partly written piece of a bounded cache
	piece   int
	begin   int
	data    []byte
	buf     *[]byte // returned to the pool after the write
}

type diskResult struct {
	job diskJob
	ok  bool // verify: the hash matched
	err error
}

// diskState is the loop's view of disk work: jobs not yet taken by a worker, writes not yet
// done per piece, and pieces whose blocks are all in and wait for their writes to verify.
type diskState struct {
	queue         []diskJob
	writeBytes    int64 // block bytes received and not yet written: bounded by fill
	pendingWrites map[int]int
	awaiting      map[int]bool
	verifying     map[int]bool
	contributors  map[int]map[*peerConn]bool
}

func (d *diskState) init() {
	d.pendingWrites = make(map[int]int)
	d.awaiting = make(map[int]bool)
	d.verifying = make(map[int]bool)
	d.contributors = make(map[int]map[*peerConn]bool)
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
		var res diskResult
		res.job = job
		switch {
		case job.discard:
			if err := t.store.Discard(job.piece); err != nil {
				t.log.WithError(err).WithField("piece", job.piece).Warn("abandoned piece still takes disk space")
			}
			continue
		case job.verify:
			res.ok, res.err = t.store.VerifyPiece(job.piece)
		default:
			res.err = t.store.WriteBlock(job.piece, job.begin, job.data)
		}
		select {
		case t.diskResults <- res:
		case <-t.closing:
			return
		}
	}
}

// queueWrite hands a received block to the disk workers.
func (t *Torrent) queueWrite(p *peerConn, piece, begin int, data []byte, buf *[]byte) {
	t.disk.queue = append(t.disk.queue, diskJob{piece: piece, begin: begin, data: data, buf: buf})
	t.disk.writeBytes += int64(len(data))
	t.disk.pendingWrites[piece]++
	c := t.disk.contributors[piece]
	if c == nil {
		c = make(map[*peerConn]bool)
		t.disk.contributors[piece] = c
	}
	c[p] = true
}

// pieceReceived notes that every block of piece is in; it is verified once written.
func (t *Torrent) pieceReceived(piece int) {
	t.disk.awaiting[piece] = true
	t.maybeVerify(piece)
}

func (t *Torrent) maybeVerify(piece int) {
	if t.disk.awaiting[piece] && t.disk.pendingWrites[piece] == 0 {
		delete(t.disk.awaiting, piece)
		t.disk.verifying[piece] = true
		t.disk.queue = append(t.disk.queue, diskJob{verify: true, piece: piece})
	}
}

func (t *Torrent) handleDisk(r diskResult) {
	j := r.job
	if !j.verify {
		t.disk.writeBytes -= int64(len(j.data))
		if j.buf != nil {
			t.blockPool.Put(j.buf)
		}
		if t.disk.writeBytes+int64(len(j.data)) > maxWriteBacklog/2 && t.disk.writeBytes <= maxWriteBacklog/2 {
			t.fillAll() // back under the backlog bound: request again
		}
		if t.disk.pendingWrites[j.piece]--; t.disk.pendingWrites[j.piece] <= 0 {
			delete(t.disk.pendingWrites, j.piece)
		}
		if r.err != nil {
			t.storageFailed(fmt.Errorf("write piece %d: %w", j.piece, r.err))
			// The block is lost; the piece fails verification and is fetched again.
		}
		t.maybeVerify(j.piece)
		return
	}
	delete(t.disk.verifying, j.piece)
	contributors := t.disk.contributors[j.piece]
	delete(t.disk.contributors, j.piece)
	switch {
	case r.err != nil:
		t.storageFailed(fmt.Errorf("verify piece %d: %w", j.piece, r.err))
		t.pk.PieceFailed(j.piece)
	case !r.ok:
		t.log.WithField("piece", j.piece).Debug("piece failed verification")
		t.pk.PieceFailed(j.piece)
		for p := range contributors {
			p.strikes++
			// One bad piece can be bad luck shared with an honest peer; two are a pattern.
			if p.strikes >= 2 {
				t.ban(p, "sent data that failed verification")
			}
		}
	case !t.store.HasPiece(j.piece):
		// A bounded cache evicted it right after admitting it, before this result reached
		// the loop (the eviction notice found the picker without it): it is wanted again.
		t.pk.PieceFailed(j.piece)
	default:
		t.pk.SetHave(j.piece)
		t.downloaded.Add(t.info.PieceSize(j.piece))
		t.pieceVerified(j.piece)
	}
	t.fillAll()
}

// storageFailed records a disk error. A full disk or a read-only file system stops the
// download (nothing would succeed); other errors are logged and the piece refetched.
func (t *Torrent) storageFailed(err error) {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EDQUOT) {
		if t.err == nil {
			t.err = err
			t.log.WithError(err).Error("storage failed; downloading stopped")
			t.pk.SetBackground(false)
			for _, p := range t.peers.list {
				t.setInterested(p, false)
			}
		}
		return
	}
	t.log.WithError(err).Warn("storage error")
}
