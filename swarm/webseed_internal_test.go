package swarm

import (
	"testing"
	"time"

	"torrentfs/metainfo"
	"torrentfs/picker"
)

// WithWebRetry returns cfg with a web seed's first rest after a failure shortened.
func WithWebRetry(cfg TorrentConfig, d time.Duration) TorrentConfig {
	cfg.webRetry = d
	return cfg
}

func TestWebFileURL(t *testing.T) {
	single := &metainfo.Info{Name: "movie 1#.mkv", Single: true, Files: []metainfo.File{{Length: 10}}}
	multi := &metainfo.Info{Name: "set a", Files: []metainfo.File{
		{Path: []string{"docs", "a b?.txt"}, Length: 1},
		{Path: []string{"été", "日本%.dat"}, Length: 1},
		{Path: []string{"x;y,z&=+@:.bin"}, Length: 1},
	}}
	for _, c := range []struct {
		base string
		info *metainfo.Info
		file int
		want string
	}{
		{"http://h/f/movie.mkv", single, 0, "http://h/f/movie.mkv"},
		{"http://h/f/", single, 0, "http://h/f/movie%201%23.mkv"},
		{"http://h:8080/", single, 0, "http://h:8080/movie%201%23.mkv"},
		{"https://h/a%20b/", single, 0, "https://h/a%20b/movie%201%23.mkv"},
		{"http://h/f/", multi, 0, "http://h/f/set%20a/docs/a%20b%3F.txt"},
		{"http://h/f", multi, 0, "http://h/f/set%20a/docs/a%20b%3F.txt"},
		{"http://h", multi, 1, "http://h/set%20a/%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC%25.dat"},
		{"http://h/f/?k=v", multi, 2, "http://h/f/set%20a/x%3By%2Cz&=+@:.bin?k=v"},
	} {
		got, err := webFileURL(c.base, c.info, &c.info.Files[c.file])
		if err != nil || got != c.want {
			t.Errorf("webFileURL(%q, %q) = %q, %v; want %q", c.base, c.info.DisplayPath(&c.info.Files[c.file]), got, err, c.want)
		}
	}
	for _, bad := range []string{"ftp://h/f", "h/f", "http://", "://x", "http://h/%zz"} {
		if got, err := webFileURL(bad, single, &single.Files[0]); err == nil {
			t.Errorf("webFileURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in   string
		want contentRange
		ok   bool
	}{
		{"bytes 0-499/1234", contentRange{0, 499, 1234}, true},
		{"bytes 500-999/*", contentRange{500, 999, -1}, true},
		{"BYTES 7-7/8", contentRange{7, 7, 8}, true},
		{" bytes  10-19/20 ", contentRange{10, 19, 20}, true},
		{"bytes 0-0/1", contentRange{0, 0, 1}, true},
		{"bytes 5-4/10", contentRange{}, false},  // last before first
		{"bytes 0-10/10", contentRange{}, false}, // past the end
		{"bytes */1234", contentRange{}, false},  // unsatisfied-range form: no bytes
		{"bytes -1-5/10", contentRange{}, false}, // sign
		{"bytes +1-5/10", contentRange{}, false}, // sign
		{"bytes 1 -5/10", contentRange{}, false}, // space inside
		{"items 0-1/2", contentRange{}, false},   // unit
		{"bytes 0-1", contentRange{}, false},     // no size
		{"bytes 0-99999999999999999999/*", contentRange{}, false},
		{"", contentRange{}, false},
	} {
		got, err := parseContentRange(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseContentRange(%q) = %+v, %v; want %+v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-499/1234", "bytes 500-999/*", "bytes */10", "bytes 1-0/5", "bytes 0-9/9", "BYTES 1-2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := parseContentRange(s)
		if err != nil {
			return
		}
		if cr.First < 0 || cr.Last < cr.First || cr.Size != -1 && cr.Size <= cr.Last {
			t.Fatalf("parseContentRange(%q) = %+v: not a valid range", s, cr)
		}
	})
}

func TestWebRuns(t *testing.T) {
	// 32 KiB pieces of two blocks, the last piece 20 KiB.
	info := &metainfo.Info{PieceLength: 32 << 10, TotalLength: 9*32<<10 + 20<<10}
	const B = 16 << 10
	blocks := []picker.Block{
		{Piece: 3, Begin: 0, Length: B}, {Piece: 3, Begin: B, Length: B}, {Piece: 4, Begin: 0, Length: B}, // run
		{Piece: 5, Begin: B, Length: B},                                  // alone: piece 4's second block is missing
		{Piece: 7, Begin: B, Length: B}, {Piece: 8, Begin: 0, Length: B}, // across a piece boundary
		{Piece: 9, Begin: B, Length: 4 << 10}, // the short last block
	}
	runs := webRuns(info, blocks)
	want := []struct {
		first, count int
		off, n       int64
	}{{0, 3, 3 * 32 << 10, 3 * B}, {3, 1, 5*32<<10 + B, B}, {4, 2, 7*32<<10 + B, 2 * B}, {6, 1, 9*32<<10 + B, 4 << 10}}
	if len(runs) != len(want) {
		t.Fatalf("%d runs, want %d: %+v", len(runs), len(want), runs)
	}
	for k, w := range want {
		r := runs[k]
		if r.off != w.off || r.n != w.n || len(r.blocks) != w.count || r.blocks[0] != blocks[w.first] {
			t.Errorf("run %d = %+v, want blocks %d..%d at %d+%d", k, r, w.first, w.first+w.count-1, w.off, w.n)
		}
	}
}
