package swarm_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// Web seeds (BEP 19) against Go's file server on loopback, which answers ranges with 206;
// cmd/torrentfs tests the same against nginx.

// webServer serves dir on 127.0.0.1, through wrap when given; it counts requests.
func webServer(t *testing.T, dir string, wrap func(http.Handler) http.Handler) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	var h http.Handler = http.FileServer(http.Dir(dir))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// logLines records the messages of a logger, for tests that look for a warning.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Levels() []logrus.Level { return logrus.AllLevels }
func (l *logLines) Fire(e *logrus.Entry) error {
	s, _ := e.String()
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	return nil
}

func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func recordLog(t *testing.T) (*logrus.Entry, *logLines) {
	log := testutil.Log(t)
	rec := &logLines{}
	log.Logger.AddHook(rec)
	return log, rec
}

func TestWebSeedOnlyMultiFile(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 64<<10)
	base, reqs := webServer(t, src, nil)
	c := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	// No trailing slash: BEP 19 clients add it for a multi-file torrent.
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{WebSeeds: []string{base}, Trackers: [][]string{}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	s := tr.Stats()
	if s.FromWebSeeds != mi.Info.TotalLength || s.Downloaded != mi.Info.TotalLength {
		t.Errorf("from web seeds %d, downloaded %d, want both %d", s.FromWebSeeds, s.Downloaded, mi.Info.TotalLength)
	}
	if s.WebSeeds != 1 {
		t.Errorf("Stats.WebSeeds = %d, want 1", s.WebSeeds)
	}
	// Pieces come in runs: far fewer requests than pieces plus file boundaries.
	if n := int(reqs.Load()); n > mi.Info.NumPieces()+len(mi.Info.Files) {
		t.Errorf("%d requests for %d pieces", n, mi.Info.NumPieces())
	}
}

func TestWebSeedOnlySingleFile(t *testing.T) {
	for _, slash := range []bool{false, true} {
		src := t.TempDir()
		testpeers.WriteFiles(t, src, map[string]int64{"one file.bin": 3<<20 + 123}, 5)
		mi, _, err := metainfo.Create(context.Background(), filepath.Join(src, "one file.bin"), metainfo.CreateOptions{PieceLength: 256 << 10, NoDate: true})
		if err != nil || !mi.Info.Single {
			t.Fatalf("single-file torrent: %v", err)
		}
		base, _ := webServer(t, src, nil)
		url := base + "/one%20file.bin"
		if slash {
			url = base + "/"
		}
		c := newClient(t, swarm.ClientConfig{})
		out := t.TempDir()
		tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{WebSeeds: []string{url}, Trackers: [][]string{}})
		waitComplete(t, tr, 60*time.Second)
		sameFile(t, filepath.Join(src, "one file.bin"), filepath.Join(out, "one file.bin"))
	}
}

func sameFile(t *testing.T, want, got string) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// A server that fails its first requests is rested, then used again, and delivers all.
func TestWebSeedComesBack(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 64<<10)
	var failed atomic.Int32
	base, _ := webServer(t, src, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n := failed.Add(1); n <= 4 {
				http.Error(w, "down", []int{500, 404, 503, 502}[n-1])
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	log, rec := recordLog(t)
	c := newClient(t, swarm.ClientConfig{Log: log})
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.WithWebRetry(swarm.TorrentConfig{WebSeeds: []string{base + "/"}, Trackers: [][]string{}}, 50*time.Millisecond))
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if n := rec.count("web seed failed"); n < 1 {
		t.Errorf("%d web seed failures logged, want at least 1", n)
	}
	if n := rec.count("using the web seed again"); n < 1 {
		t.Errorf("the web seed was not used again after its rest")
	}
}

// A server that sends the whole file for a range (no range support) serves small files.
func TestWebSeedWithoutRanges(t *testing.T) {
	src := t.TempDir()
	files := map[string]int64{"a.bin": 200 << 10, "b/c.bin": 100<<10 + 5, "d.bin": 700 << 10}
	mi, _ := makeTorrent(t, src, "small", files, 32<<10)
	base, _ := webServer(t, src, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Range")
			h.ServeHTTP(w, r)
		})
	})
	c := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{WebSeeds: []string{base}, Trackers: [][]string{}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "small"), filepath.Join(out, "small"))
}

// A web seed with a corrupted file is rested when its piece fails the hash, and a real
// peer finishes the download without being blamed.
func TestWebSeedBadData(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 64<<10)
	bad := t.TempDir()
	if err := os.CopyFS(bad, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	// Every block of the served copy is wrong, so whatever the web seed sends fails: which
	// pieces it gets before the peer does is up to timing.
	filepath.WalkDir(filepath.Join(bad, "multi"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		for off := int64(0); off < st.Size(); off += 16 << 10 {
			corrupt(t, path, off)
		}
		return nil
	})
	base, _ := webServer(t, bad, nil)

	seed := newClient(t, swarm.ClientConfig{UploadLimit: 4 << 20})
	addTorrent(t, seed, mi, src, true, swarm.TorrentConfig{Trackers: [][]string{}})
	log, rec := recordLog(t)
	c := newClient(t, swarm.ClientConfig{Log: log})
	out := t.TempDir()
	tr := addTorrent(t, c, mi, out, false, swarm.TorrentConfig{
		WebSeeds: []string{base}, Trackers: [][]string{}, Peers: []netip.AddrPort{seed.Addr().(*net.TCPAddr).AddrPort()}})
	waitComplete(t, tr, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
	if n := rec.count("failed verification"); n < 1 {
		t.Errorf("no web seed was rested for bad data")
	}
	if s := tr.Stats(); s.Banned != 0 {
		t.Errorf("%d peers banned: the honest seed was blamed", s.Banned)
	}
}

func corrupt(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// A server whose 206 answers name other bytes than asked, or that sends more bytes than
// asked, is not believed: the first is a failure (a rest), the second is read only as far
// as asked.
func TestWebSeedWrongRanges(t *testing.T) {
	src := t.TempDir()
	mi, _ := makeTorrent(t, src, "multi", multiFile, 64<<10)
	base, _ := webServer(t, src, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 0-0/1")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(make([]byte, 1<<10))
		})
	})
	log, rec := recordLog(t)
	c := newClient(t, swarm.ClientConfig{Log: log})
	tr := addTorrent(t, c, mi, t.TempDir(), false, swarm.TorrentConfig{WebSeeds: []string{base}, Trackers: [][]string{}})
	testutil.WaitFor(t, 20*time.Second, "a rest for a wrong Content-Range", func() bool { return rec.count("asked bytes") > 0 })
	if s := tr.Stats(); s.PiecesDone != 0 || s.FromWebSeeds != 0 {
		t.Errorf("took %d bytes, %d pieces from a server that sends the wrong ranges", s.FromWebSeeds, s.PiecesDone)
	}

	// Longer bodies than asked: the extra bytes are never read as data.
	base2, _ := webServer(t, src, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &padWriter{ResponseWriter: w}
			h.ServeHTTP(rw, r)
			w.Write(bytes.Repeat([]byte{0xee}, 64<<10))
		})
	})
	c2 := newClient(t, swarm.ClientConfig{})
	out := t.TempDir()
	tr2 := addTorrent(t, c2, mi, out, false, swarm.TorrentConfig{WebSeeds: []string{base2}, Trackers: [][]string{}})
	waitComplete(t, tr2, 60*time.Second)
	testpeers.SameTree(t, filepath.Join(src, "multi"), filepath.Join(out, "multi"))
}

// padWriter drops the Content-Length header so that bytes written after the file's go out.
type padWriter struct{ http.ResponseWriter }

func (w *padWriter) WriteHeader(code int) {
	w.Header().Del("Content-Length")
	w.ResponseWriter.WriteHeader(code)
}
