package swarm

// The piece layers of a v2-only or hybrid torrent fetched from a magnet link: a torrent
// file carries them beside the info dictionary (BEP 52), ut_metadata does not. Without them
// the pieces of a v2-only torrent's files longer than one piece cannot be verified, and a
// hybrid's reads wait for whole pieces checked by SHA-1 (no per-block release). Once a
// fetch has the info dictionary, its v2 connections (named by the truncated v2 info-hash:
// a hybrid fetched by its v1 hash dials its peers again by that one) ask their peers for
// the layers in hash requests, up to metainfo.MaxLayerRequest hashes each with the proof up
// to the file's pieces root, and check every answer on its own (metainfo.VerifyLayerRange):
// a peer whose hashes fail is dropped as one whose metadata does. The requests are spread
// as the metadata's pieces are, under fetch.mu. A v2-only fetch needs every layer; a
// hybrid's are optional (its pieces have SHA-1 hashes): the fetch gives them
// hybridLayerWait, or until every peer failed to give them, and returns what it has.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"torrentfs/metainfo"
	"torrentfs/swarm/wire"
)

// layerFetch is the piece-layer requests of a fetch; fetch.mu guards it.
type layerFetch struct {
	jobs     []*layerJob // by file, each file's in index order
	left     int         // jobs without an answer
	optional bool        // a hybrid's: the torrent runs without them (see FetchMetadata)
}

// layerJob is one hash request for part of a file's piece layer.
type layerJob struct {
	root     metainfo.Hash256
	length   int64 // the file's
	pieceLen int64
	r        metainfo.HashRange
	asked    int                // sessions asking now
	hashes   []metainfo.Hash256 // verified; nil until then
}

func (j *layerJob) fields() wire.HashRequestFields {
	return wire.HashRequestFields{PiecesRoot: j.root, BaseLayer: uint32(j.r.BaseLayer), Index: uint32(j.r.Index),
		Length: uint32(j.r.Length), ProofLayers: uint32(j.r.ProofLayers)}
}

// newLayerFetch lists the requests info's piece layers take, for a v2-only or hybrid
// torrent whose v2 info-hash is v2; nil when none are needed.
func newLayerFetch(v2 metainfo.Hash256, info *metainfo.Info) *layerFetch {
	if v2.IsZero() || !info.Version.HasV2() {
		return nil
	}
	lf := &layerFetch{optional: info.Version.HasV1()}
	seen := map[metainfo.Hash256]bool{}
	for _, f := range info.Files {
		if f.Padding || f.Length <= info.PieceLength || seen[f.PiecesRoot] {
			continue
		}
		seen[f.PiecesRoot] = true // identical files share a root and a layer
		for _, r := range metainfo.PieceLayerRanges(f.Length, info.PieceLength) {
			lf.jobs = append(lf.jobs, &layerJob{root: f.PiecesRoot, length: f.Length, pieceLen: info.PieceLength, r: r})
		}
	}
	if len(lf.jobs) == 0 {
		return nil
	}
	lf.left = len(lf.jobs)
	return lf
}

func (lf *layerFetch) complete() bool { return lf.left == 0 }

// result is the piece layers by pieces root: those of the files whose requests are all
// answered (all of them once complete); nil when there are none.
func (lf *layerFetch) result() map[metainfo.Hash256][]byte {
	var out map[metainfo.Hash256][]byte
	partial := map[metainfo.Hash256]bool{}
	for _, j := range lf.jobs {
		if j.hashes == nil {
			partial[j.root] = true
		}
	}
	for _, j := range lf.jobs {
		if partial[j.root] {
			continue
		}
		if out == nil {
			out = map[metainfo.Hash256][]byte{}
		}
		for _, h := range j.hashes {
			out[j.root] = append(out[j.root], h[:]...)
		}
	}
	return out
}

// layerHash is what a new connection of the fetch is named by while a hybrid found by its
// v1 hash still wants piece layers: its truncated v2 info-hash, so that the connection is a
// v2 one; zero otherwise.
func (f *fetch) layerHash() metainfo.Hash {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hybridV2.IsZero() || !f.wantsLayers() {
		return metainfo.Hash{}
	}
	return f.hybridV2.Truncate()
}

// wantsLayers tells whether piece layers are still being fetched; f.mu is held.
func (f *fetch) wantsLayers() bool {
	return f.err == nil && f.layers != nil && !f.layers.complete()
}

// errV1Conn ends a hybrid's connection named by its v1 hash once the info dictionary is
// in: hash requests need a v2 one, which the fetch dials at once.
var errV1Conn = errors.New("a v1 connection cannot fetch piece layers")

// nextLayer picks a piece-layer request for a session: one nobody asks, else (the last
// ones) the one asked of fewest. job is nil when the session has to wait for wake; done once
// every layer is in, or the fetch failed.
func (f *fetch) nextLayer() (job *layerJob, wake <-chan struct{}, done bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lf := f.layers
	if f.err != nil || lf == nil || lf.complete() {
		return nil, nil, true
	}
	for _, j := range lf.jobs {
		if j.hashes == nil && (job == nil || j.asked < job.asked) {
			job = j
		}
	}
	if job == nil {
		return nil, f.wake, false
	}
	job.asked++
	return job, nil, false
}

// putLayer records a verified answer; the fetch is done with the last one.
func (f *fetch) putLayer(j *layerJob, hashes []metainfo.Hash256) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j.asked--
	if hashes == nil || j.hashes != nil {
		return // failed, or a duplicate of the last requests' double asks
	}
	j.hashes = hashes
	if f.layers.left--; f.layers.left == 0 {
		f.log.Infof("got the piece layers (%d requests)", len(f.layers.jobs))
		close(f.done)
		f.wakeAll()
	}
}

// errHashRejected: the peer would not give hashes we asked for (it may lack them).
var errHashRejected = errors.New("peer rejected a hash request")

// fetchLayers asks the session's peer for piece-layer hashes until the fetch has them all.
func (s *metaSession) fetchLayers(ctx context.Context) error {
	for {
		job, wake, done := s.f.nextLayer()
		if done {
			return nil
		}
		if job == nil {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		hs, err := s.requestLayer(job)
		s.f.putLayer(job, hs)
		if err != nil {
			return err
		}
	}
}

// requestLayer sends job's hash request and reads until its answer, which it verifies.
func (s *metaSession) requestLayer(job *layerJob) ([]metainfo.Hash256, error) {
	fields := job.fields()
	if err := s.write(fields.Message(wire.HashRequest)); err != nil {
		return nil, fmt.Errorf("request piece layer hashes: %w", err)
	}
	s.conn.SetReadDeadline(time.Now().Add(fetchPieceWait))
	for {
		m, err := s.r.Read()
		if err != nil {
			return nil, fmt.Errorf("wait for piece layer hashes: %w", err)
		}
		switch {
		case m.Keepalive:
		case m.ID == wire.HashReject:
			h, err := wire.ParseHashRequest(m.Payload)
			if err != nil {
				return nil, badPeer("hash reject: %w", err)
			}
			if h == fields {
				return nil, fmt.Errorf("%w (%s)", errHashRejected, h)
			}
		case m.ID == wire.Hashes:
			h, raw, err := wire.ParseHashes(m.Payload)
			if err != nil {
				return nil, badPeer("hashes: %w", err)
			}
			if h != fields {
				continue // not what we wait for
			}
			hs := make([]metainfo.Hash256, len(raw))
			for i := range raw {
				hs[i] = raw[i]
			}
			got, err := metainfo.VerifyLayerRange(job.root, job.length, job.pieceLen, job.r, hs)
			if err != nil {
				return nil, badPeer("piece layer hashes: %w", err)
			}
			return got, nil
		case m.ID == wire.Extended && m.ExtID == metadataExtID:
			s.rejectMetadataRequest(m.Payload)
		}
	}
}

// rejectMetadataRequest answers a peer's ut_metadata request during a fetch: we have
// nothing to give yet.
func (s *metaSession) rejectMetadataRequest(payload []byte) {
	mm, err := wire.ParseMetadataMessage(payload)
	if err != nil || mm.Type != wire.MetadataRequest {
		return
	}
	if rb, err := (wire.MetadataMessage{Type: wire.MetadataReject, Piece: mm.Piece}).AppendTo(nil); err == nil {
		s.write(wire.Message{ID: wire.Extended, ExtID: s.id, Payload: rb})
	}
}
