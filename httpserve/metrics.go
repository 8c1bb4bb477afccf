package httpserve

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// histogram counts observations into fixed buckets (upper bounds, ascending). Counts are
// per bucket; the exposition makes them cumulative.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // len(bounds)+1: the last is past every bound
	sum    float64
	n      uint64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := len(h.bounds)
	for k, b := range h.bounds {
		if v <= b {
			i = k
			break
		}
	}
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

// write prints the histogram in the text exposition format.
func (h *histogram) write(w io.Writer, name, help string) {
	h.mu.Lock()
	counts := append([]uint64(nil), h.counts...)
	sum, n := h.sum, h.n
	h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum uint64
	for k, b := range h.bounds {
		cum += counts[k]
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, formatFloat(b), cum)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, n, name, formatFloat(sum), name, n)
}

// viewerMetrics are kept by the server for its HTTP reads.
type viewerMetrics struct {
	readWait  *histogram // seconds each chunk read waited for its pieces
	firstByte *histogram // seconds from a request to its first body byte
	mu        sync.Mutex
	stalls    uint64 // reads that waited longer than Options.StallAfter
}

func (m *viewerMetrics) init() {
	b := []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	m.readWait = newHistogram(b...)
	m.firstByte = newHistogram(b...)
}

func (m *viewerMetrics) observeRead(wait, stallAfter time.Duration) {
	m.readWait.observe(wait.Seconds())
	if wait > stallAfter {
		m.mu.Lock()
		m.stalls++
		m.mu.Unlock()
	}
}

func (m *viewerMetrics) observeFirstByte(secs float64) { m.firstByte.observe(secs) }

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	s.writeMetrics(bw)
}

// writeMetrics prints every metric: the torrents' (labelled infohash and name), then the
// viewers'.
func (s *Server) writeMetrics(w io.Writer) {
	type metric struct {
		name, typ, help string
		value           func(Torrent, Stats) float64
	}
	per := []metric{
		{"torrentfs_downloaded_bytes_total", "counter", "Piece bytes downloaded from peers this session.", func(_ Torrent, s Stats) float64 { return float64(s.Downloaded) }},
		{"torrentfs_uploaded_bytes_total", "counter", "Block bytes uploaded to peers this session.", func(_ Torrent, s Stats) float64 { return float64(s.Uploaded) }},
		{"torrentfs_download_rate_bytes", "gauge", "Download rate, bytes per second.", func(_ Torrent, s Stats) float64 { return s.DownRate }},
		{"torrentfs_upload_rate_bytes", "gauge", "Upload rate, bytes per second.", func(_ Torrent, s Stats) float64 { return s.UpRate }},
		{"torrentfs_peers", "gauge", "Connected peers.", func(_ Torrent, s Stats) float64 { return float64(s.Peers) }},
		{"torrentfs_seeds", "gauge", "Connected peers that have every piece.", func(_ Torrent, s Stats) float64 { return float64(s.Seeds) }},
		{"torrentfs_pieces_done", "gauge", "Verified pieces.", func(_ Torrent, s Stats) float64 { return float64(s.PiecesDone) }},
		{"torrentfs_pieces", "gauge", "Pieces in the torrent.", func(t Torrent, _ Stats) float64 { return float64(t.Info().NumPieces()) }},
	}
	torrents := s.list()
	stats := make([]Stats, len(torrents))
	for i, st := range torrents {
		stats[i] = st.t.Stats()
	}
	for _, m := range per {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for i, st := range torrents {
			fmt.Fprintf(w, "%s{infohash=\"%s\",name=\"%s\"} %s\n", m.name, st.hash, escapeLabel(st.t.Info().Name), formatFloat(m.value(st.t, stats[i])))
		}
	}
	fmt.Fprintf(w, "# HELP torrentfs_http_open_heads Read heads serving HTTP streams now.\n# TYPE torrentfs_http_open_heads gauge\ntorrentfs_http_open_heads %d\n", s.OpenHeads())
	fmt.Fprintf(w, "# HELP torrentfs_http_parked_heads Read heads kept a few seconds after a viewer's request ended, for its next one.\n# TYPE torrentfs_http_parked_heads gauge\ntorrentfs_http_parked_heads %d\n", s.ParkedHeads())
	s.metrics.readWait.write(w, "torrentfs_http_read_wait_seconds", "Time each HTTP stream read waited for its pieces.")
	s.metrics.firstByte.write(w, "torrentfs_http_first_byte_seconds", "Time from an HTTP stream request to its first body byte.")
	s.metrics.mu.Lock()
	stalls := s.metrics.stalls
	s.metrics.mu.Unlock()
	fmt.Fprintf(w, "# HELP torrentfs_http_stalls_total HTTP stream reads that waited over the stall threshold.\n# TYPE torrentfs_http_stalls_total counter\ntorrentfs_http_stalls_total %d\n", stalls)
}

// escapeLabel escapes a label value: backslash, double quote and newline.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
