package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"torrentfs/reader"
)

// A player does not keep one request open: ffmpeg, mpv and VLC open a new one for every
// seek (the index at a file's tail, then back to the media data) and drop the old. If each
// request had a head of its own, the window the first one opened would be dropped while
// the player reads the index, and the request that comes back would start cold. So the
// requests of one viewer of one file share a head, as the reads of one open file do in
// the mount: a session. When its last request ends, the session is parked: its wants stay
// for Options.Linger, and a request of the same viewer for the same file within that time
// takes it up again; otherwise the head is closed.

// sessionKey names one viewer of one file: the client's address (without its port, which
// changes with every connection) and user agent, and the file.
type sessionKey struct {
	hash   string
	file   int
	client string
	agent  string
}

// session is a head shared by one viewer's requests. Its first fields are guarded by
// Server.mu, turn by its own mutex.
type session struct {
	key  sessionKey
	head *reader.Head
	refs int    // requests using it now
	gen  uint64 // bumped on every park and take-up, so a stale expiry does nothing
	turn turn
}

// A player waits on one read at a time: when it seeks it opens a new request and stops
// reading the old one, though it may keep that connection open until the new one has
// answered (ffmpeg reads a tail index so). The old request's handler does not know: it
// goes on filling its socket, and each of its reads wants its pieces now, ahead of the
// reads the player is waiting for. The reads of one open file in the mount never compete
// so, the player being one thread. turn gives a viewer's newest request the line: a read
// of a request waits while a newer request of the same session has a read under way, and
// a read starting calls off the older requests' reads under way (they are made again
// afterwards). An older request's pieces stay wanted through the head's window, at the
// times the window gives them, and its reads of pieces already here are not held up
// for long: the newer request's reads of pieces here take no time.
type turn struct {
	mu      sync.Mutex
	seq     uint64                 // the newest request's number
	reads   map[*turnRead]struct{} // reads under way
	changed chan struct{}          // closed (and replaced) when a read ends
}

type turnRead struct {
	seq    uint64
	cancel context.CancelCauseFunc
}

// errYield calls off a read of an older request of the session.
var errYield = errors.New("a newer request of the viewer goes first")

// request numbers a new request of the session: the newest goes first.
func (t *turn) request() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	return t.seq
}

// begin waits until no newer request than seq has a read under way, calls off the reads of
// older ones, and returns the context of request seq's read; end must be called when the
// read ends.
func (t *turn) begin(ctx context.Context, seq uint64) (_ context.Context, end func(), _ error) {
	t.mu.Lock()
	for {
		var wait chan struct{}
		for r := range t.reads {
			if r.seq > seq {
				wait = t.changed
				break
			}
		}
		if wait == nil {
			break
		}
		t.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		t.mu.Lock()
	}
	for r := range t.reads {
		if r.seq < seq {
			r.cancel(errYield)
		}
	}
	rctx, cancel := context.WithCancelCause(ctx)
	me := &turnRead{seq: seq, cancel: cancel}
	if t.reads == nil {
		t.reads = map[*turnRead]struct{}{}
		t.changed = make(chan struct{})
	}
	t.reads[me] = struct{}{}
	t.mu.Unlock()
	return rctx, func() {
		t.mu.Lock()
		delete(t.reads, me)
		close(t.changed)
		t.changed = make(chan struct{})
		t.mu.Unlock()
		cancel(nil)
	}, nil
}

func keyOf(st *served, file int, r *http.Request) sessionKey {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return sessionKey{hash: st.hash, file: file, client: host, agent: r.UserAgent()}
}

// acquire returns the viewer's session for the file, taking up a parked one or opening a
// new head. A parked one taken up by a request at from, a file offset that continues none
// of its head's streams, starts afresh (reader.Head.Restart): the viewer has seeked, and
// its last position's readahead would take the peers from the new one.
func (s *Server) acquire(st *served, file int, r *http.Request, from int64) (_ *session, reused bool, _ error) {
	k := keyOf(st, file, r)
	s.mu.Lock()
	if ss := s.sessions[k]; ss != nil && s.opts.Linger >= 0 {
		parked := ss.refs == 0
		if parked {
			s.parked.Add(-1)
			s.open.Add(1)
		}
		ss.refs++
		ss.gen++
		s.mu.Unlock()
		if parked {
			ss.head.Restart(from)
		}
		return ss, true, nil
	}
	s.mu.Unlock()
	head, err := reader.New(st.t, file, s.opts.Reader)
	if err != nil {
		return nil, false, err
	}
	ss := &session{key: k, head: head, refs: 1}
	s.open.Add(1)
	s.mu.Lock()
	if s.opts.Linger < 0 || s.sessions[k] != nil {
		// Sessions off, or another request of this viewer opened one meanwhile: this
		// request keeps its head to itself and closes it when it ends.
		ss.key = sessionKey{}
	} else {
		s.sessions[k] = ss
	}
	s.mu.Unlock()
	return ss, false, nil
}

// release ends one request's use of ss. The last one parks it for Linger; with no linger
// (or a session of its own) its head closes now.
func (s *Server) release(ss *session) {
	s.mu.Lock()
	ss.refs--
	if ss.refs > 0 {
		s.mu.Unlock()
		return
	}
	s.open.Add(-1)
	if ss.key == (sessionKey{}) || s.opts.Linger < 0 || s.closed {
		if ss.key != (sessionKey{}) {
			delete(s.sessions, ss.key)
		}
		s.mu.Unlock()
		ss.head.Close()
		return
	}
	ss.gen++
	gen := ss.gen
	s.parked.Add(1)
	s.mu.Unlock()
	time.AfterFunc(s.opts.Linger, func() { s.expire(ss, gen) })
}

// expire closes a parked session that nobody took up since it was parked as gen.
func (s *Server) expire(ss *session, gen uint64) {
	s.mu.Lock()
	if ss.refs > 0 || ss.gen != gen || s.sessions[ss.key] != ss {
		s.mu.Unlock()
		return
	}
	delete(s.sessions, ss.key)
	s.parked.Add(-1)
	s.mu.Unlock()
	ss.head.Close()
}

// dropParked closes the parked sessions of the torrent with hex info-hash hash, or of
// every torrent when hash is empty.
func (s *Server) dropParked(hash string) {
	var heads []*reader.Head
	s.mu.Lock()
	for k, ss := range s.sessions {
		if ss.refs == 0 && (hash == "" || k.hash == hash) {
			delete(s.sessions, k)
			s.parked.Add(-1)
			heads = append(heads, ss.head)
		}
	}
	s.mu.Unlock()
	for _, h := range heads {
		h.Close()
	}
}

// ParkedHeads is the number of heads kept for viewers between their requests.
func (s *Server) ParkedHeads() int { return int(s.parked.Load()) }

// Close closes the heads parked for viewers; requests under way end as their torrents do.
// Later requests still work, with no parking.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.dropParked("")
}
