package httpserve

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/metainfo"
	"torrentfs/reader"
)

// Torrent is what the server needs from a torrent: what a read head needs, plus its
// identity and a stats snapshot.
type Torrent interface {
	reader.Torrent
	InfoHash() metainfo.Hash
	Stats() Stats
}

// Stats is a torrent's state as the status page and the metrics show it.
type Stats struct {
	PiecesDone           int
	Peers, Seeds         int
	Downloaded, Uploaded int64 // bytes this session
	DownRate, UpRate     float64
}

// Options tune a Server. Zero fields take the defaults in brackets.
type Options struct {
	// Reader tunes each request's read head.
	Reader reader.Options
	// ChunkSize is the size of each read a stream makes [256 KiB]; a request's first read
	// ends at the end of its first piece, so the first bytes wait for that piece alone.
	ChunkSize int
	// StallAfter is how long a read may wait before it counts as a stall [500ms].
	StallAfter time.Duration
	// Linger is how long a viewer's head outlives its last request, for the viewer's next
	// request of the same file to take up (session.go) [3s]; negative closes it at once.
	Linger time.Duration
	// Control and Token turn on the write endpoints (control.go): POST /api/torrents adds
	// a torrent, DELETE /api/torrents/{key} removes one, for requests that carry Token as
	// a bearer token. Without both, the server only reads: other methods get 405.
	Control Control
	Token   string
	Log     *logrus.Entry
}

const (
	defaultChunk  = 256 << 10
	defaultLinger = 3 * time.Second
)

// Server is an http.Handler over a set of torrents that may change (Add, Remove). Safe
// for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux

	tmu      sync.RWMutex
	torrents []*served
	byHash   map[string]*served

	metrics viewerMetrics
	open    atomic.Int64 // read heads serving requests now
	parked  atomic.Int64 // read heads kept between one viewer's requests

	mu       sync.Mutex
	viewers  map[*viewer]struct{}    // stream requests in flight
	sessions map[sessionKey]*session // each viewer's head for a file, in use or parked
	closed   bool                    // Close was called: no more parking
}

// served is one torrent and its files by URL path.
type served struct {
	t      Torrent
	hash   string
	byPath map[string]int // display path -> index into Info.Files
}

// viewer is one stream request with its head (its viewer's session's).
type viewer struct {
	t       *served
	file    int
	head    *reader.Head
	session *session
	seq     uint64       // the request's number in its session (turn)
	pos     atomic.Int64 // file offset of the read under way
}

// New serves torrents. Their info must be known (no magnet still fetching metadata).
func New(opts Options, torrents ...Torrent) *Server {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = defaultChunk
	}
	if opts.Linger == 0 {
		opts.Linger = defaultLinger
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = 500 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	s := &Server{opts: opts, byHash: map[string]*served{}, viewers: map[*viewer]struct{}{}, sessions: map[sessionKey]*session{}}
	s.metrics.init()
	for _, t := range torrents {
		s.Add(t)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /stream/{hash}/{path...}", s.handleStream)
	s.mux.HandleFunc("GET /playlist.m3u", s.handlePlaylist)
	s.mux.HandleFunc("GET /playlist/{file}", s.handleTorrentPlaylist)
	s.mux.HandleFunc("GET /api/torrents", s.handleAPI)
	s.mux.HandleFunc("GET /metrics", s.handleMetrics)
	s.mux.HandleFunc("GET /api/server", s.handleServer)
	if opts.writable() {
		s.mux.HandleFunc("POST /api/torrents", s.handleAdd)
		s.mux.HandleFunc("DELETE /api/torrents/{key}", s.handleRemove)
	}
	s.mux.HandleFunc("GET /{$}", s.handleIndex)
	return s
}

// Add serves t too (its info must be known). A torrent already served is replaced.
func (s *Server) Add(t Torrent) {
	info := t.Info()
	st := &served{t: t, hash: t.InfoHash().HexString(), byPath: map[string]int{}}
	for i := range info.Files {
		if !info.Files[i].Padding {
			st.byPath[info.DisplayPath(&info.Files[i])] = i
		}
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	s.removeLocked(st.hash)
	s.torrents = append(s.torrents, st)
	s.byHash[st.hash] = st
}

// Remove stops serving the torrent with info-hash h: new requests get 404, its parked
// heads close. Streams under way end when their torrent stops (their reads fail).
func (s *Server) Remove(h metainfo.Hash) {
	s.tmu.Lock()
	s.removeLocked(h.HexString())
	s.tmu.Unlock()
	s.dropParked(h.HexString())
}

func (s *Server) removeLocked(hash string) {
	if _, ok := s.byHash[hash]; !ok {
		return
	}
	delete(s.byHash, hash)
	for i, st := range s.torrents {
		if st.hash == hash {
			s.torrents = append(s.torrents[:i:i], s.torrents[i+1:]...)
			break
		}
	}
}

// list is the torrents served now, in the order added.
func (s *Server) list() []*served {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	return s.torrents
}

// find is the torrent with the given info-hash (hex, any case).
func (s *Server) find(hash string) (*served, bool) {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	st, ok := s.byHash[strings.ToLower(hash)]
	return st, ok
}

// ServeHTTP answers GET and HEAD (the mux's GET patterns match HEAD too) to anyone; other
// methods only when the write endpoints are on, and only to requests with the token from
// no other site's page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !read && !s.opts.writable() {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if hasDotSegment(r.URL.Path) {
		// The mux would clean the path and redirect; a path climbing out is simply not here.
		http.NotFound(w, r)
		return
	}
	if !read && !s.authorizeWrite(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// OpenHeads is the number of read heads serving HTTP requests right now (requests of one
// viewer for one file share one); ParkedHeads counts those kept between requests.
func (s *Server) OpenHeads() int { return int(s.open.Load()) }

// lookup finds a file by info-hash and display path. The path is matched exactly against
// the torrent's own paths, so nothing outside them ("..", encoded or not) can be named.
func (s *Server) lookup(hash, path string) (*served, int, bool) {
	st, ok := s.find(hash)
	if !ok {
		return nil, 0, false
	}
	i, ok := st.byPath[path]
	return st, i, ok
}

func (s *Server) addViewer(v *viewer) {
	s.mu.Lock()
	s.viewers[v] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) removeViewer(v *viewer) {
	s.mu.Lock()
	delete(s.viewers, v)
	s.mu.Unlock()
}

// hasDotSegment tells whether a decoded URL path has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
