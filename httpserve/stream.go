package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
)

// etag names one file of one torrent: its bytes never change.
func etag(hash string, file int) string { return fmt.Sprintf(`"%s-%d"`, hash, file) }

// handleStream serves a file, whole or one byte range, through its viewer's read head.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	st, idx, ok := s.lookup(r.PathValue("hash"), r.PathValue("path"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	info := st.t.Info()
	f := &info.Files[idx]
	size := f.Length
	tag := etag(st.hash, idx)
	hd := w.Header()
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("ETag", tag)
	hd.Set("Content-Type", contentType(info.DisplayPath(f)))

	rg := byteRange{0, size}
	status := http.StatusOK
	rh := r.Header.Get("Range")
	if ir := r.Header.Get("If-Range"); ir != "" && ir != tag {
		// The client's copy is another file (or dated: we have no dates): send it all.
		rh = ""
	}
	switch br, err := parseRange(rh, size); {
	case err == nil:
		rg, status = br, http.StatusPartialContent
		hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", br.start, br.start+br.length-1, size))
	case errors.Is(err, errUnsatisfiable):
		hd.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	hd.Set("Content-Length", strconv.FormatInt(rg.length, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}

	ss, reused, err := s.acquire(st, idx, r, rg.start)
	if err != nil {
		s.opts.Log.Errorf("http %s: %v", r.URL.Path, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	log := s.opts.Log.WithFields(logrus.Fields{"path": r.URL.Path, "from": rg.start, "length": rg.length, "client": r.RemoteAddr, "shared_head": reused})
	log.Debug("http stream request")
	v := &viewer{t: st, file: idx, head: ss.head, session: ss, seq: ss.turn.request()}
	s.addViewer(v)
	defer func() {
		s.removeViewer(v)
		s.release(ss)
	}()
	w.WriteHeader(status)
	sent, err := s.copyRange(r.Context(), w, v, rg, began)
	if err != nil && r.Context().Err() == nil {
		s.opts.Log.Warnf("http %s bytes %d+%d: %v", r.URL.Path, rg.start, rg.length, err)
	}
	log.WithFields(logrus.Fields{"sent": sent, "took": time.Since(began).Round(time.Millisecond)}).Debug("http stream request ended")
}

// copyRange reads rg through the viewer's head in chunks and writes each out. It stops at the first
// error: the request's context ending (client gone) cancels the read under way.
func (s *Server) copyRange(ctx context.Context, w http.ResponseWriter, v *viewer, rg byteRange, began time.Time) (sent int64, _ error) {
	buf := make([]byte, min(int64(s.opts.ChunkSize), max(rg.length, 1)))
	off, end := rg.start, rg.start+rg.length
	// The first read stops at the end of the piece it starts in: a read waits for every
	// piece under it, and the first bytes should wait for one piece only, as a FUSE
	// reader's first read usually does (a file seldom starts on a piece boundary).
	info := v.t.t.Info()
	firstEnd := pieceEnd(info.Files[v.file].Offset+off, info.PieceLength) - info.Files[v.file].Offset
	first := true
	for off < end {
		p := buf[:min(int64(len(buf)), end-off)]
		if first {
			p = p[:min(int64(len(p)), firstEnd-off)]
		}
		v.pos.Store(off)
		t0 := time.Now()
		n, err := s.readTurn(ctx, v, p, off)
		if err != nil && !(errors.Is(err, io.EOF) && n == len(p)) {
			return sent, fmt.Errorf("read: %w", err)
		}
		s.metrics.observeRead(time.Since(t0), s.opts.StallAfter)
		if _, err := w.Write(p[:n]); err != nil {
			return sent, fmt.Errorf("write: %w", err)
		}
		sent += int64(n)
		if first {
			s.metrics.observeFirstByte(time.Since(began).Seconds())
			first = false
		}
		off += int64(n)
	}
	return sent, nil
}

// readTurn reads through the viewer's head in the session's order (see turn): the read
// waits while a newer request of the viewer reads, and is made again when one calls it off.
func (s *Server) readTurn(ctx context.Context, v *viewer, p []byte, off int64) (int, error) {
	for {
		rctx, end, err := v.session.turn.begin(ctx, v.seq)
		if err != nil {
			return 0, err
		}
		n, err := v.head.ReadAt(rctx, p, off)
		end()
		if err != nil && errors.Is(context.Cause(rctx), errYield) && ctx.Err() == nil {
			continue
		}
		return n, err
	}
}

// pieceEnd is the torrent offset where the piece holding torrent offset at ends.
func pieceEnd(at, pieceLen int64) int64 {
	if pieceLen <= 0 {
		return math.MaxInt64
	}
	return (at/pieceLen + 1) * pieceLen
}
