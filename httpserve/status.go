package httpserve

import (
	"context"
	"embed"
	"encoding/json"
	"net/http"
	"strings"
)

//go:embed static/index.html
var static embed.FS

// apiTorrent is one torrent in /api/torrents.
type apiTorrent struct {
	InfoHash   string    `json:"infohash"`
	Name       string    `json:"name"`
	Size       int64     `json:"size"`
	Pieces     int       `json:"pieces"`
	PiecesDone int       `json:"pieces_done"`
	Progress   float64   `json:"progress"` // 0..1
	Peers      int       `json:"peers"`
	Seeds      int       `json:"seeds"`
	DownRate   float64   `json:"down_rate"` // bytes/s
	UpRate     float64   `json:"up_rate"`
	Downloaded int64     `json:"downloaded"`
	Uploaded   int64     `json:"uploaded"`
	Playlist   string    `json:"playlist"`
	Files      []apiFile `json:"files"`
	PeerList   []Peer    `json:"peer_list"`
}

// Peer is one connected peer of a torrent, for the status page.
type Peer struct {
	Addr      string  `json:"addr"`
	Client    string  `json:"client"`
	Transport string  `json:"transport"` // tcp or utp
	Encrypted bool    `json:"encrypted"`
	Outgoing  bool    `json:"outgoing"`
	Seed      bool    `json:"seed"`
	Progress  float64 `json:"progress"` // 0..1
	DownRate  float64 `json:"down_rate"`
	UpRate    float64 `json:"up_rate"`
	RTTms     float64 `json:"rtt_ms"` // 0 until measured
	Flags     string  `json:"flags"`  // D/d download (unchoked/choked), U/u upload, S snubbed
}

// PeerLister is what a Torrent may also offer: its connected peers.
type PeerLister interface {
	Peers(ctx context.Context) []Peer
}

// apiFile is one file with its piece map: one character per piece under the file, 'h'
// verified, 'w' wanted by a reader (an HTTP viewer's window, or any read head when the
// torrent tells its states: FUSE readers too), 'd' downloading in the background, '.'
// missing.
type apiFile struct {
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	URL      string    `json:"url"`
	Playable bool      `json:"playable"`
	Pieces   string    `json:"pieces"`
	Viewers  []apiView `json:"viewers"`
}

// apiView is one open HTTP read head: where it reads and the end of its readahead.
type apiView struct {
	Pos int64 `json:"pos"`
	End int64 `json:"end"`
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	b, err := static.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	w.Write(b)
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	torrents := s.list()
	out := make([]apiTorrent, 0, len(torrents))
	views := s.viewWindows()
	for _, st := range torrents {
		out = append(out, s.apiTorrent(r.Context(), st, views[st]))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.Encode(out)
}

// viewWindows collects the windows of the open heads, per torrent and file.
func (s *Server) viewWindows() map[*served]map[int][]apiView {
	s.mu.Lock()
	vs := make([]*viewer, 0, len(s.viewers))
	for v := range s.viewers {
		vs = append(vs, v)
	}
	s.mu.Unlock()
	out := map[*served]map[int][]apiView{}
	for _, v := range vs {
		// The head's window starts past the read under way, which is wanted too.
		pos := v.pos.Load()
		_, end, ok := v.head.Window()
		if !ok {
			end = pos
		}
		if out[v.t] == nil {
			out[v.t] = map[int][]apiView{}
		}
		out[v.t][v.file] = append(out[v.t][v.file], apiView{pos, end})
	}
	return out
}

func (s *Server) apiTorrent(ctx context.Context, st *served, views map[int][]apiView) apiTorrent {
	info := st.t.Info()
	stats := st.t.Stats()
	a := apiTorrent{
		InfoHash: st.hash, Name: info.Name, Size: info.TotalLength,
		Pieces: info.NumPieces(), PiecesDone: stats.PiecesDone,
		Peers: stats.Peers, Seeds: stats.Seeds, DownRate: stats.DownRate, UpRate: stats.UpRate,
		Downloaded: stats.Downloaded, Uploaded: stats.Uploaded,
		Playlist: "/playlist/" + st.hash + ".m3u",
		Files:    []apiFile{},
		PeerList: []Peer{},
	}
	if pl, ok := st.t.(PeerLister); ok {
		if ps := pl.Peers(ctx); ps != nil {
			a.PeerList = ps
		}
	}
	if a.Pieces > 0 {
		a.Progress = float64(a.PiecesDone) / float64(a.Pieces)
	}
	for i := range info.Files {
		f := &info.Files[i]
		if f.Padding {
			continue
		}
		p := info.DisplayPath(f)
		af := apiFile{Path: p, Size: f.Length, URL: streamPath(st.hash, p), Playable: playable(p), Viewers: views[i]}
		if af.Viewers == nil {
			af.Viewers = []apiView{}
		}
		af.Pieces = pieceMap(ctx, st.t, f.Offset, f.Length, af.Viewers)
		a.Files = append(a.Files, af)
	}
	return a
}

// PieceStater is what a Torrent may also offer: each piece's state as the engine sees it,
// one byte per piece of first..last: 'h' verified, 'w' wanted by a read head, 'd' being
// downloaded, '.' missing; nil when it cannot tell.
type PieceStater interface {
	PieceStates(ctx context.Context, first, last int) []byte
}

// pieceMap draws the pieces under file bytes [off, off+n) as characters (see apiFile).
func pieceMap(ctx context.Context, t Torrent, off, n int64, views []apiView) string {
	info := t.Info()
	first, last := info.PieceRange(off, n)
	if last < first {
		return ""
	}
	var states []byte
	if ps, ok := t.(PieceStater); ok {
		states = ps.PieceStates(ctx, first, last)
	}
	var b strings.Builder
	b.Grow(last - first + 1)
	for k := first; k <= last; k++ {
		st := byte('.')
		if k-first < len(states) {
			st = states[k-first]
		}
		switch {
		case st == 'h' || t.HasPiece(k):
			b.WriteByte('h')
		case st == 'w':
			b.WriteByte('w')
		case wantedBy(info.PieceOffset(k)-off, info.PieceSize(k), views):
			b.WriteByte('w')
		case st == 'd':
			b.WriteByte('d')
		default:
			b.WriteByte('.')
		}
	}
	return b.String()
}

// wantedBy tells whether file bytes [start, start+n) meet a viewer's window.
func wantedBy(start, n int64, views []apiView) bool {
	for _, v := range views {
		if start < v.End && start+n > v.Pos {
			return true
		}
	}
	return false
}
