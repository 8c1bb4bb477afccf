package httpserve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// fixture: a torrent "show" with a video spanning several pieces, a subtitle and a text
// file, every piece present.
func fixture(t *testing.T) (*fake, *Server, string) {
	t.Helper()
	f := newFake("show", 0xab,
		ffile{[]string{"ep 1.mkv"}, 300_001},
		ffile{[]string{"subs", "ep 1.srt"}, 5_000},
		ffile{[]string{"notes.txt"}, 70_000},
	)
	f.ProvideAll()
	s, hs := start(t, Options{}, f)
	return f, s, hs.URL
}

func streamURL(base string, f *fake, path string) string {
	return base + streamPath(f.InfoHash().HexString(), path)
}

func TestHTTPRanges(t *testing.T) {
	f, _, base := fixture(t)
	video := f.fileBytes(0)
	size := int64(len(video))
	url := streamURL(base, f, "show/ep 1.mkv")
	tag := etag(f.InfoHash().HexString(), 0)
	tests := []struct {
		name         string
		headers      []string
		status       int
		start, end   int64 // expected body: video[start:end]
		contentRange string
	}{
		{"whole", nil, 200, 0, size, ""},
		{"first bytes", []string{"Range", "bytes=0-99"}, 206, 0, 100, "bytes 0-99/300001"},
		{"middle across pieces", []string{"Range", "bytes=65000-200000"}, 206, 65000, 200001, "bytes 65000-200000/300001"},
		{"suffix", []string{"Range", "bytes=-1000"}, 206, size - 1000, size, "bytes 299001-300000/300001"},
		{"open-ended", []string{"Range", "bytes=131072-"}, 206, 131072, size, "bytes 131072-300000/300001"},
		{"end past the file", []string{"Range", "bytes=300000-400000"}, 206, 300000, size, "bytes 300000-300000/300001"},
		{"unsatisfiable", []string{"Range", "bytes=300001-"}, 416, 0, 0, "bytes */300001"},
		{"malformed", []string{"Range", "bytes=x-y"}, 416, 0, 0, "bytes */300001"},
		{"several ranges: all", []string{"Range", "bytes=0-1,5-6"}, 200, 0, size, ""},
		{"If-Range matches", []string{"Range", "bytes=10-19", "If-Range", tag}, 206, 10, 20, "bytes 10-19/300001"},
		{"If-Range differs", []string{"Range", "bytes=10-19", "If-Range", `"other"`}, 200, 0, size, ""},
		{"If-Range date", []string{"Range", "bytes=10-19", "If-Range", "Wed, 21 Oct 2015 07:28:00 GMT"}, 200, 0, size, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, "GET", url, tc.headers...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Content-Range"); got != tc.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tc.contentRange)
			}
			if got := resp.Header.Get("Accept-Ranges"); got != "bytes" {
				t.Errorf("Accept-Ranges %q", got)
			}
			if tc.status == 416 {
				return
			}
			if !bytes.Equal(body, video[tc.start:tc.end]) {
				t.Errorf("body: %d bytes, want bytes %d-%d of the file", len(body), tc.start, tc.end)
			}
			if resp.ContentLength != tc.end-tc.start {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.end-tc.start)
			}
			if got := resp.Header.Get("Content-Type"); got != "video/x-matroska" {
				t.Errorf("Content-Type %q", got)
			}
			if got := resp.Header.Get("ETag"); got != tag {
				t.Errorf("ETag %q, want %q", got, tag)
			}
		})
	}
}

func TestHTTPHeadAndTypes(t *testing.T) {
	f, s, base := fixture(t)
	for _, tc := range []struct{ path, typ string }{
		{"show/ep 1.mkv", "video/x-matroska"},
		{"show/subs/ep 1.srt", "application/x-subrip"},
		{"show/notes.txt", "text/plain; charset=utf-8"},
	} {
		resp, body := get(t, "HEAD", streamURL(base, f, tc.path))
		if resp.StatusCode != 200 || len(body) != 0 {
			t.Errorf("HEAD %s: status %d, %d body bytes", tc.path, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Type"); got != tc.typ {
			t.Errorf("HEAD %s: Content-Type %q, want %q", tc.path, got, tc.typ)
		}
	}
	resp, _ := get(t, "HEAD", streamURL(base, f, "show/ep 1.mkv"), "Range", "bytes=-10")
	if resp.StatusCode != 206 || resp.ContentLength != 10 || resp.Header.Get("Content-Range") != "bytes 299991-300000/300001" {
		t.Errorf("HEAD with a range: %d, length %d, %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Range"))
	}
	if s.OpenHeads() != 0 {
		t.Errorf("%d heads open after HEAD requests", s.OpenHeads())
	}
}

func TestHTTPNotFound(t *testing.T) {
	f, _, base := fixture(t)
	hash := f.InfoHash().HexString()
	for _, p := range []string{
		"/stream/" + strings.Repeat("00", 20) + "/show/notes.txt",
		"/stream/nothex/show/notes.txt",
		"/stream/" + hash + "/show/missing.txt",
		"/stream/" + hash + "/show",
		"/stream/" + hash + "/notes.txt",
		"/stream/" + hash + "/show/subs/../notes.txt",
		"/stream/" + hash + "/show/../../../../etc/passwd",
		"/stream/" + hash + "/show/%2e%2e/%2e%2e/etc/passwd",
		"/stream/" + hash + "/show%2f..%2f..%2fetc%2fpasswd",
		"/stream/" + hash + "/show/./notes.txt",
		"/stream/" + hash + "/",
		"/playlist/" + strings.Repeat("00", 20) + ".m3u",
		"/playlist/" + hash,
		"/nothing",
	} {
		resp, _ := get(t, "GET", base+p)
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		resp, _ := get(t, m, streamURL(base, f, "show/notes.txt"))
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, resp.StatusCode)
		}
	}
	// Upper-case hex names the same torrent.
	resp, _ := get(t, "GET", base+"/stream/"+strings.ToUpper(hash)+"/show/notes.txt")
	if resp.StatusCode != 200 {
		t.Errorf("upper-case info-hash: status %d", resp.StatusCode)
	}
}

func TestHTTPPlaylist(t *testing.T) {
	f := newFake("show", 0xab, ffile{[]string{"ep 1.mkv"}, 1000}, ffile{[]string{"notes.txt"}, 10}, ffile{[]string{"b", "song.mp3"}, 10})
	g := newFake("other", 0xcd, ffile{[]string{"clip.mp4"}, 1000})
	_, hs := start(t, Options{}, f, g)
	host := strings.TrimPrefix(hs.URL, "http://")
	fh, gh := f.InfoHash().HexString(), g.InfoHash().HexString()
	want := "#EXTM3U\n" +
		"#EXTINF:-1,ep 1.mkv\nhttp://" + host + "/stream/" + fh + "/show/ep%201.mkv\n" +
		"#EXTINF:-1,song.mp3\nhttp://" + host + "/stream/" + fh + "/show/b/song.mp3\n" +
		"#EXTINF:-1,clip.mp4\nhttp://" + host + "/stream/" + gh + "/other/clip.mp4\n"
	resp, body := get(t, "GET", hs.URL+"/playlist.m3u")
	if resp.StatusCode != 200 || string(body) != want {
		t.Errorf("playlist.m3u: %d\n%s\nwant\n%s", resp.StatusCode, body, want)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "audio/x-mpegurl") {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	want = "#EXTM3U\n#EXTINF:-1,clip.mp4\nhttp://" + host + "/stream/" + gh + "/other/clip.mp4\n"
	if _, body := get(t, "GET", hs.URL+"/playlist/"+gh+".m3u"); string(body) != want {
		t.Errorf("per-torrent playlist:\n%s\nwant\n%s", body, want)
	}
	// The URLs in it work.
	f.ProvideAll()
	resp, body = get(t, "GET", "http://"+host+"/stream/"+fh+"/show/ep%201.mkv")
	if resp.StatusCode != 200 || len(body) != 1000 {
		t.Errorf("playlist URL: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestHTTPDisconnectReleasesHead: a client that goes away mid-transfer, while the server
// waits for a missing piece, leaves no head open and no wants behind.
func TestHTTPDisconnectReleasesHead(t *testing.T) {
	f := newFake("show", 0xab, ffile{[]string{"ep 1.mkv"}, 1 << 20})
	f.Provide(0, 1, 2, 3) // the first 256 KiB
	s, hs := start(t, Options{Linger: 100 * time.Millisecond}, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", streamURL(hs.URL, f, "show/ep 1.mkv"), nil)
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The first read, to the end of piece 0: the server's write of it is done, and its next
	// read (a 256 KiB chunk from 64 KiB) waits for piece 4.
	got := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.fileBytes(0)[:len(got)]) {
		t.Fatal("the first bytes differ")
	}
	testutil.WaitFor(t, 10*time.Second, "a read to wait for piece 4", func() bool { return f.Blocked() > 0 })
	if s.OpenHeads() != 1 || f.NumWants() == 0 {
		t.Fatalf("while streaming: %d heads, %d wants", s.OpenHeads(), f.NumWants())
	}
	// The status shows the viewer and its window as wanted.
	var ts []apiTorrent
	_, body := get(t, "GET", hs.URL+"/api/torrents")
	if err := json.Unmarshal(body, &ts); err != nil {
		t.Fatal(err)
	}
	if fl := ts[0].Files[0]; len(fl.Viewers) != 1 || !strings.HasPrefix(fl.Pieces, "hhhhw") {
		t.Errorf("while streaming: viewers %v, pieces %q", fl.Viewers, fl.Pieces)
	}
	cancel()
	testutil.WaitFor(t, 10*time.Second, "the request to end", func() bool {
		return s.OpenHeads() == 0 && f.Blocked() == 0
	})
	testutil.WaitFor(t, 10*time.Second, "the parked head to close", func() bool {
		return s.ParkedHeads() == 0 && f.NumWants() == 0
	})
}

// TestHTTPViewerSession: a player's next request (here: the index at the tail, after it
// dropped the first) takes up the head of its last, so the window the first request opened
// stays wanted; another viewer gets a head of its own; Remove closes parked heads.
func TestHTTPViewerSession(t *testing.T) {
	const size = 4 << 20 // 64 pieces
	for _, linger := range []time.Duration{time.Minute, -1} {
		t.Run(fmt.Sprint("linger ", linger), func(t *testing.T) {
			f := newFake("show", 0xab, ffile{[]string{"ep 1.mkv"}, size})
			f.Provide(0, 63)
			s, hs := start(t, Options{Linger: linger}, f)
			url := streamURL(hs.URL, f, "show/ep 1.mkv")
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 10*time.Second, "a read to wait for piece 1", func() bool { return f.Blocked() > 0 })
			if !f.Wanted(5) {
				t.Fatal("the first request's window does not reach piece 5")
			}
			cancel() // the player seeks: it drops the request
			resp.Body.Close()
			testutil.WaitFor(t, 10*time.Second, "the request to end", func() bool { return s.OpenHeads() == 0 && f.Blocked() == 0 })
			resp, body := get(t, "GET", url, "Range", "bytes=-1000")
			if code := resp.StatusCode; code != 206 || !bytes.Equal(body, f.fileBytes(0)[size-1000:]) {
				t.Fatalf("tail: status %d, %d bytes", code, len(body))
			}
			if linger < 0 {
				testutil.WaitFor(t, 10*time.Second, "the wants to go", func() bool { return f.NumWants() == 0 })
				if s.ParkedHeads() != 0 {
					t.Errorf("%d heads parked with parking off", s.ParkedHeads())
				}
				return
			}
			if !f.Wanted(5) || s.ParkedHeads() != 1 {
				t.Fatalf("after the tail request: piece 5 wanted %v, %d parked heads, want true and 1", f.Wanted(5), s.ParkedHeads())
			}
			// Another player on the same machine is another viewer.
			resp, _ = get(t, "GET", url, "Range", "bytes=-10", "User-Agent", "other player")
			if code := resp.StatusCode; code != 206 || s.ParkedHeads() != 2 {
				t.Fatalf("another viewer: status %d, %d parked heads, want 206 and 2", code, s.ParkedHeads())
			}
			s.Remove(f.InfoHash())
			if s.ParkedHeads() != 0 || f.NumWants() != 0 {
				t.Errorf("after Remove: %d parked heads, %d wants", s.ParkedHeads(), f.NumWants())
			}
		})
	}
}

// TestHTTPFirstReadEndsAtPiece: a file starting inside a piece gets its first bytes out as
// soon as that piece is in, though the first chunk would reach into pieces still missing.
func TestHTTPFirstReadEndsAtPiece(t *testing.T) {
	f := newFake("show", 0xab, ffile{[]string{"a.txt"}, 1000}, ffile{[]string{"ep 1.mkv"}, 1 << 20})
	f.Provide(0)
	s, hs := start(t, Options{}, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make([]byte, 64<<10-1000) // the rest of piece 0
	read := make(chan error, 1)
	go func() {
		// The response's header comes with the first bytes, so the request waits too.
		req, _ := http.NewRequestWithContext(ctx, "GET", streamURL(hs.URL, f, "show/ep 1.mkv"), nil)
		resp, err := hs.Client().Do(req)
		if err == nil {
			_, err = io.ReadFull(resp.Body, got)
			resp.Body.Close()
		}
		read <- err
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-read
		t.Fatal("the bytes of piece 0 did not come while piece 1 is missing")
	}
	if !bytes.Equal(got, f.fileBytes(1)[:len(got)]) {
		t.Fatal("the first bytes differ")
	}
	cancel()
	testutil.WaitFor(t, 10*time.Second, "the head to close", func() bool {
		return s.OpenHeads() == 0 && f.Blocked() == 0
	})
}

func TestHTTPStatusAPI(t *testing.T) {
	f := newFake("show", 0xab, ffile{[]string{"ep 1.mkv"}, 200_000}, ffile{[]string{"a.txt"}, 100_000})
	f.Provide(0, 3)
	_, hs := start(t, Options{}, f)
	resp, body := get(t, "GET", hs.URL+"/api/torrents")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var ts []apiTorrent
	if err := json.Unmarshal(body, &ts); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(ts) != 1 {
		t.Fatalf("%d torrents", len(ts))
	}
	a := ts[0]
	if a.Name != "show" || a.InfoHash != f.InfoHash().HexString() || a.Size != 300_000 || a.Pieces != 5 || a.PiecesDone != 2 || a.Peers != 3 || a.DownRate != 512 {
		t.Errorf("torrent: %+v", a)
	}
	// 64 KiB pieces: the video is pieces 0-3, the text file 3-4.
	if len(a.Files) != 2 || a.Files[0].Pieces != "h..h" || a.Files[1].Pieces != "h." || a.Files[0].Path != "show/ep 1.mkv" || !a.Files[0].Playable || a.Files[1].Playable {
		t.Errorf("files: %+v", a.Files)
	}
	resp, body = get(t, "GET", hs.URL+"/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("/api/torrents")) {
		t.Errorf("index: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if bytes.Contains(body, []byte("http://")) && !bytes.Contains(body, []byte(`"http://www.w3.org/2000/svg"`)) || bytes.Contains(body, []byte("https://")) {
		t.Error("the status page refers to another site")
	}
}

func TestHTTPMetrics(t *testing.T) {
	f := newFake(`we"ird\name`+"\n", 0xab, ffile{[]string{"ep 1.mkv"}, 1 << 20})
	f.ProvideAll()
	_, hs := start(t, Options{ChunkSize: 100_000}, f)
	url := streamURL(hs.URL, f, `we"ird\name`+"\n/ep 1.mkv")
	// 3 requests: the whole file (11 reads: to the end of the first 64 KiB piece, then 100 kB
	// each), 2 ranges of one read each.
	get(t, "GET", url)
	get(t, "GET", url, "Range", "bytes=0-9")
	get(t, "GET", url, "Range", "bytes=-10")
	_, body := get(t, "GET", hs.URL+"/metrics")
	m := parseMetrics(t, string(body))
	hash := f.InfoHash().HexString()
	labels := fmt.Sprintf(`{infohash="%s",name="we\"ird\\name\n"}`, hash)
	for name, want := range map[string]float64{
		"torrentfs_downloaded_bytes_total" + labels: 1000,
		"torrentfs_uploaded_bytes_total" + labels:   10,
		"torrentfs_peers" + labels:                  3,
		"torrentfs_pieces_done" + labels:            16,
		"torrentfs_pieces" + labels:                 16,
		"torrentfs_http_open_heads":                 0,
		"torrentfs_http_parked_heads":               1, // the three requests were one viewer's
		"torrentfs_http_read_wait_seconds_count":    13,
		"torrentfs_http_first_byte_seconds_count":   3,
		"torrentfs_http_stalls_total":               0,
	} {
		if got, ok := m.values[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, h := range []string{"torrentfs_http_read_wait_seconds", "torrentfs_http_first_byte_seconds"} {
		checkHistogram(t, m, h)
	}
}

// metrics is a parsed exposition: sample values by name with labels, and declared types.
type metrics struct {
	values map[string]float64
	order  []string
	types  map[string]string
}

// parseMetrics checks the text format line by line as it reads it.
func parseMetrics(t *testing.T, s string) metrics {
	t.Helper()
	m := metrics{values: map[string]float64{}, types: map[string]string{}}
	helps := map[string]bool{}
	if !strings.HasSuffix(s, "\n") {
		t.Error("exposition does not end with a newline")
	}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, _, _ := strings.Cut(rest, " ")
			helps[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if !helps[name] {
				t.Errorf("TYPE of %s before its HELP", name)
			}
			m.types[name] = typ
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample line %q", line)
		}
		key := line[:i]
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil && line[i+1:] != "+Inf" {
			t.Fatalf("bad value in %q", line)
		}
		if _, dup := m.values[key]; dup {
			t.Errorf("sample %s twice", key)
		}
		m.values[key] = v
		m.order = append(m.order, key)
		base, _, _ := strings.Cut(key, "{")
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(base, suf); ok && m.types[b] == "histogram" {
				base = b
			}
		}
		if m.types[base] == "" {
			t.Errorf("sample %s has no TYPE line", key)
		}
	}
	return m
}

// checkHistogram: buckets in ascending le, cumulative counts never falling, +Inf last
// and equal to _count.
func checkHistogram(t *testing.T, m metrics, name string) {
	t.Helper()
	if m.types[name] != "histogram" {
		t.Fatalf("%s: type %q", name, m.types[name])
	}
	var les []float64
	var counts []float64
	for _, k := range m.order {
		rest, ok := strings.CutPrefix(k, name+`_bucket{le="`)
		if !ok {
			continue
		}
		le := strings.TrimSuffix(rest, `"}`)
		var v float64
		if le == "+Inf" {
			v = math.Inf(1)
		} else if _, err := fmt.Sscan(le, &v); err != nil {
			t.Fatalf("%s: bad le %q", name, le)
		}
		les = append(les, v)
		counts = append(counts, m.values[k])
	}
	if len(les) < 2 || !math.IsInf(les[len(les)-1], 1) {
		t.Fatalf("%s: buckets %v without +Inf last", name, les)
	}
	for i := 1; i < len(les); i++ {
		if les[i] <= les[i-1] || counts[i] < counts[i-1] {
			t.Errorf("%s: bucket %d (le %v, %v) after (le %v, %v)", name, i, les[i], counts[i], les[i-1], counts[i-1])
		}
	}
	if counts[len(counts)-1] != m.values[name+"_count"] {
		t.Errorf("%s: +Inf bucket %v, count %v", name, counts[len(counts)-1], m.values[name+"_count"])
	}
	if _, ok := m.values[name+"_sum"]; !ok {
		t.Errorf("%s: no _sum", name)
	}
}

// TestHTTPStallsCounted: a read that waits for a missing piece past the stall threshold
// is counted, once.
func TestHTTPStallsCounted(t *testing.T) {
	f := newFake("show", 0xab, ffile{[]string{"ep 1.mkv"}, 100_000})
	_, hs := start(t, Options{StallAfter: time.Nanosecond}, f)
	done := make(chan []byte)
	go func() {
		// Not get: t.Fatal belongs to the test's goroutine.
		req, _ := http.NewRequest("GET", streamURL(hs.URL, f, "show/ep 1.mkv"), nil)
		req.Header.Set("Range", "bytes=0-9")
		var body []byte
		if resp, err := http.DefaultClient.Do(req); err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- body
	}()
	testutil.WaitFor(t, 10*time.Second, "the read to wait", func() bool { return f.Blocked() > 0 })
	f.ProvideAll()
	if body := <-done; !bytes.Equal(body, f.fileBytes(0)[:10]) {
		t.Errorf("body %q", body)
	}
	_, body := get(t, "GET", hs.URL+"/metrics")
	m := parseMetrics(t, string(body))
	if got := m.values["torrentfs_http_stalls_total"]; got != 1 {
		t.Errorf("stalls %v, want 1", got)
	}
	if got := m.values["torrentfs_http_read_wait_seconds_count"]; got != 1 {
		t.Errorf("read waits counted %v, want 1", got)
	}
}

// stated is a torrent that tells its pieces' states, as the engine does: wants of read
// heads the server does not own (FUSE readers) show in the piece map.
type stated struct {
	*fake
	states string
}

func (s stated) PieceStates(ctx context.Context, first, last int) []byte {
	return []byte(s.states[first : last+1])
}

func TestPieceMapFromEngineStates(t *testing.T) {
	f := newFake("show", 1, ffile{[]string{"ep 1.mkv"}, 200_000}, ffile{[]string{"notes.txt"}, 100_000})
	f.Provide(0)
	_, hs := start(t, Options{}, stated{f, "hwd.w"})
	_, body := get(t, "GET", hs.URL+"/api/torrents")
	var ts []apiTorrent
	if err := json.Unmarshal(body, &ts); err != nil {
		t.Fatal(err)
	}
	if got := ts[0].Files[0].Pieces + "|" + ts[0].Files[1].Pieces; got != "hwd.|.w" {
		t.Errorf("piece maps %q, want hwd.|.w", got)
	}
}

// Torrents come and go while serving: a removed one's URLs are 404, an added one's work.
func TestAddRemoveTorrents(t *testing.T) {
	a := newFake("a", 1, ffile{[]string{"x.bin"}, 1000})
	b := newFake("b", 2, ffile{[]string{"y.bin"}, 1000})
	a.Provide(0)
	b.Provide(0)
	s, hs := start(t, Options{}, a)
	url := func(f *fake, p string) string { return hs.URL + "/stream/" + f.InfoHash().HexString() + "/" + p }
	if resp, _ := get(t, "GET", url(b, "b/y.bin")); resp.StatusCode != 404 {
		t.Errorf("not yet added: %d", resp.StatusCode)
	}
	s.Add(b)
	if resp, body := get(t, "GET", url(b, "b/y.bin")); resp.StatusCode != 200 || len(body) != 1000 {
		t.Errorf("added: %d, %d bytes", resp.StatusCode, len(body))
	}
	s.Remove(a.InfoHash())
	if resp, _ := get(t, "GET", url(a, "a/x.bin")); resp.StatusCode != 404 {
		t.Errorf("removed: %d", resp.StatusCode)
	}
	_, pl := get(t, "GET", hs.URL+"/playlist.m3u")
	_, api := get(t, "GET", hs.URL+"/api/torrents")
	if bytes.Contains(api, []byte(a.InfoHash().HexString())) || !bytes.Contains(api, []byte(b.InfoHash().HexString())) {
		t.Errorf("api after remove:\n%s\n%s", api, pl)
	}
}

// TestHTTPNewestRequestFirst: while a player's newer request (the index at the tail) waits
// for its first bytes, the read its older request's handler made ahead of the player is
// called off, so the two do not compete for peers; the older request goes on afterwards
// and sends the right bytes.
func TestHTTPNewestRequestFirst(t *testing.T) {
	const size = 4 << 20 // 64 pieces
	f := newFake("show", 0xab, ffile{[]string{"ep 1.mkv"}, size})
	f.Provide(0)
	_, hs := start(t, Options{}, f)
	url := streamURL(hs.URL, f, "show/ep 1.mkv")
	resp, err := hs.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the first request to wait for piece 1", func() bool { return f.Blocked() == 1 })
	tail := make(chan []byte, 1)
	go func() {
		_, body := get(t, "GET", url, "Range", "bytes=-1000")
		tail <- body
	}()
	testutil.WaitFor(t, 10*time.Second, "the tail request to wait for piece 63", func() bool { return f.WaitingFor(63) == 1 })
	// Only the tail request waits at the torrent now: the first one's read was called off.
	deadline := time.Now().Add(10 * time.Second)
	for f.WaitingFor(1) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	n := f.Blocked()
	f.Provide(63)
	if body := <-tail; !bytes.Equal(body, f.fileBytes(0)[size-1000:]) {
		f.ProvideAll()
		t.Fatalf("tail: %d bytes, not the file's last 1000", len(body))
	}
	if n != 1 {
		f.ProvideAll()
		t.Fatalf("%d reads waited at the torrent while the tail request waited, want 1 (the tail's)", n)
	}
	testutil.WaitFor(t, 10*time.Second, "the first request to wait for piece 1 again", func() bool { return f.Blocked() == 1 })
	f.ProvideAll()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, f.fileBytes(0)[64<<10:]) {
		t.Fatalf("the first request's rest: %d bytes, not the file's", len(rest))
	}
}
