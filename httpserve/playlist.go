package httpserve

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// handlePlaylist lists every playable file of every torrent.
func (s *Server) handlePlaylist(w http.ResponseWriter, r *http.Request) {
	writePlaylist(w, r, s.list())
}

// handleTorrentPlaylist answers /playlist/<infohash>.m3u.
func (s *Server) handleTorrentPlaylist(w http.ResponseWriter, r *http.Request) {
	hash, ok := strings.CutSuffix(r.PathValue("file"), ".m3u")
	st, found := s.find(hash)
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	writePlaylist(w, r, []*served{st})
}

func writePlaylist(w http.ResponseWriter, r *http.Request, ts []*served) {
	w.Header().Set("Content-Type", "audio/x-mpegurl; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	base := baseURL(r)
	io.WriteString(w, "#EXTM3U\n")
	for _, st := range ts {
		info := st.t.Info()
		for i := range info.Files {
			f := &info.Files[i]
			p := info.DisplayPath(f)
			if f.Padding || !playable(p) {
				continue
			}
			// A title is one line: a newline in a name would start a new entry.
			title := strings.NewReplacer("\r", " ", "\n", " ").Replace(path.Base(p))
			fmt.Fprintf(w, "#EXTINF:-1,%s\n%s%s\n", title, base, streamPath(st.hash, p))
		}
	}
}

// streamPath is the escaped URL path of a file's stream.
func streamPath(hash, displayPath string) string {
	segs := strings.Split(displayPath, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/stream/" + hash + "/" + strings.Join(segs, "/")
}

// baseURL is scheme://host of the request, as the client addressed us.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
