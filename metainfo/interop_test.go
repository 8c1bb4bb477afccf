package metainfo

import (
	"bytes"
	"crypto/sha1"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"torrentfs/internal/testpeers"
)

// TestParseThirdPartyTorrents parses torrents made by mktorrent and transmission-create and
// checks our info-hash against transmission-show's, our file list against the files on disk,
// and every piece hash against the data read back through Spans.
func TestParseThirdPartyTorrents(t *testing.T) {
	for _, tool := range []string{"mktorrent", "transmission-create", "transmission-show"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/test installs it): %v", tool, err)
		}
	}
	multi := map[string]int{
		"sub/f1":                    70000,
		"sub/deeper/f2":             16384,
		"café/naïve ü.txt":          12345,
		"日本語/ファイル 名前.bin":           40000,
		"with space and 'quote'.md": 3,
		"Ωmega":                     1,
	}
	// transmission-create leaves empty files out; mktorrent keeps them.
	withEmpty := map[string]int{"sub/empty": 0}
	for k, v := range multi {
		withEmpty[k] = v
	}
	tests := []struct {
		name    string
		files   map[string]int // relative path -> length; one entry named "" means single-file
		command func(src, out string) []string
		private bool
		tiers   [][]string
		webseed []string
	}{
		{
			name:  "mktorrent single file",
			files: map[string]int{"": 100000},
			command: func(src, out string) []string {
				return []string{"mktorrent", "-d", "-l", "15", "-a", "udp://127.0.0.1:1/a", "-o", out, src}
			},
			tiers: [][]string{{"udp://127.0.0.1:1/a"}},
		},
		{
			name:  "mktorrent multi-file private with tiers, web seeds and an empty file",
			files: withEmpty,
			command: func(src, out string) []string {
				return []string{"mktorrent", "-d", "-p", "-l", "15", "-a", "udp://127.0.0.1:1/a,http://127.0.0.1:2/b",
					"-a", "udp://127.0.0.1:3/c", "-w", "http://127.0.0.1:4/ws/", "-c", "comment é", "-o", out, src}
			},
			private: true,
			tiers:   [][]string{{"udp://127.0.0.1:1/a", "http://127.0.0.1:2/b"}, {"udp://127.0.0.1:3/c"}},
			webseed: []string{"http://127.0.0.1:4/ws/"},
		},
		{
			name:  "transmission-create single file",
			files: map[string]int{"": 33000},
			command: func(src, out string) []string {
				return []string{"transmission-create", "-s", "16", "-t", "udp://127.0.0.1:1/a", "-o", out, src}
			},
			tiers: [][]string{{"udp://127.0.0.1:1/a"}},
		},
		{
			name:  "transmission-create multi-file private",
			files: multi,
			command: func(src, out string) []string {
				return []string{"transmission-create", "-p", "-s", "32", "-t", "udp://127.0.0.1:1/a", "-t", "udp://127.0.0.1:3/c", "-o", out, src}
			},
			private: true,
			tiers:   [][]string{{"udp://127.0.0.1:1/a"}, {"udp://127.0.0.1:3/c"}},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "Torrent Ü")
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			if n, ok := tt.files[""]; ok {
				src += ".bin"
				writeFile(t, src, randomBytes(rng, n))
			} else {
				for rel, n := range tt.files {
					p := filepath.Join(src, filepath.FromSlash(rel))
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					writeFile(t, p, randomBytes(rng, n))
				}
			}
			out := filepath.Join(dir, "out.torrent")
			argv := tt.command(src, out)
			cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, b)
			}

			m, err := Load(out)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			checkInvariants(t, m)
			if want := transmissionShowHash(t, out); m.InfoHash.HexString() != want {
				t.Errorf("info-hash %s; transmission-show says %s", m.InfoHash, want)
			}
			if m.Info.Name != filepath.Base(src) {
				t.Errorf("Name %q; want %q", m.Info.Name, filepath.Base(src))
			}
			if m.Info.Private != tt.private {
				t.Errorf("Private = %v; want %v", m.Info.Private, tt.private)
			}
			if !reflect.DeepEqual(m.Trackers(), tt.tiers) {
				t.Errorf("Trackers = %q; want %q", m.Trackers(), tt.tiers)
			}
			if !reflect.DeepEqual(m.URLList, tt.webseed) {
				t.Errorf("URLList = %q; want %q", m.URLList, tt.webseed)
			}
			checkFilesMatchDisk(t, m, src, tt.files)
			checkPieceHashes(t, m, src)
		})
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

var showHash = regexp.MustCompile(`(?m)^\s*Hash(?: v1)?:\s*([0-9a-f]{40})\s*$`)

// transmissionShowHash returns the v1 info-hash transmission-show prints for a torrent.
func transmissionShowHash(t *testing.T, torrent string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "transmission-show", torrent).CombinedOutput()
	if err != nil {
		t.Fatalf("transmission-show: %v\n%s", err, out)
	}
	m := showHash.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no Hash line in transmission-show output:\n%s", out)
	}
	return string(m[1])
}

// checkFilesMatchDisk compares the parsed file list with what was written.
func checkFilesMatchDisk(t *testing.T, m *MetaInfo, src string, files map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, f := range m.Info.Files {
		got[strings.Join(f.Path, "/")] = int(f.Length)
	}
	if !reflect.DeepEqual(got, files) {
		t.Errorf("files %v; want %v", got, files)
	}
}

// checkPieceHashes reads every piece from the source files through Spans and compares its
// SHA-1 with the torrent's, which proves the geometry matches the creator's layout.
func checkPieceHashes(t *testing.T, m *MetaInfo, src string) {
	t.Helper()
	in := &m.Info
	for p := range in.NumPieces() {
		var piece bytes.Buffer
		for _, s := range in.Spans(in.PieceOffset(p), in.PieceSize(p)) {
			f := in.Files[s.File]
			if f.Padding {
				piece.Write(make([]byte, s.Length))
				continue
			}
			name := src
			if !in.Single {
				name = filepath.Join(append([]string{src}, f.Path...)...)
			}
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			piece.Write(data[s.FileOffset : s.FileOffset+s.Length])
		}
		if int64(piece.Len()) != in.PieceSize(p) {
			t.Fatalf("piece %d: read %d bytes; want %d", p, piece.Len(), in.PieceSize(p))
		}
		if Hash(sha1.Sum(piece.Bytes())) != in.Pieces[p] {
			t.Fatalf("piece %d: hash mismatch", p)
		}
	}
}

// libtorrentPython is the interpreter that sees Debian's python3-libtorrent.
const libtorrentPython = "/usr/bin/python3"

// ltView is what libtorrent reads from a torrent: its info-hashes in hex ("" when absent) and
// its files other than pad files, as "SIZE PATH" lines.
type ltView struct {
	v1, v2 string
	files  []string
}

// runLibtorrent runs testdata/ltmeta.py with args and parses what it prints.
func runLibtorrent(t *testing.T, args ...string) ltView {
	t.Helper()
	testpeers.NeedLibtorrent(t)
	out, err := exec.CommandContext(t.Context(), libtorrentPython, append([]string{"testdata/ltmeta.py"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ltmeta.py %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var v ltView
	for line := range strings.Lines(string(out)) {
		key, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if rest == "-" {
			rest = ""
		}
		switch key {
		case "v1":
			v.v1 = rest
		case "v2":
			v.v2 = rest
		case "file":
			v.files = append(v.files, rest)
		}
	}
	return v
}

// ourView is the same view of a torrent we parsed.
func ourView(m *MetaInfo) ltView {
	var v ltView
	if m.Info.Version.HasV1() {
		v.v1 = m.InfoHash.HexString()
	}
	if m.Info.Version.HasV2() {
		v.v2 = m.InfoHashV2.HexString()
	}
	for i := range m.Info.Files {
		if f := &m.Info.Files[i]; !f.Padding {
			v.files = append(v.files, strconv.FormatInt(f.Length, 10)+" "+m.Info.DisplayPath(f))
		}
	}
	return v
}

// TestLibtorrentV2 checks v2 and hybrid torrents both ways against libtorrent 2.0: made by
// libtorrent, we read the info-hashes and files it reports (and the v2 trees and v1 hashes
// match the data); made by us, libtorrent reads our info-hashes and files.
func TestLibtorrentV2(t *testing.T) {
	dir := t.TempDir()
	multi := filepath.Join(dir, "multi")
	contents := writeTree(t, multi, 7, v2Files)
	single := filepath.Join(dir, "single.bin")
	writeFile(t, single, randomBytes(rand.New(rand.NewPCG(8, 8)), 3*32768+5))
	for _, src := range []string{multi, single} {
		for _, v := range []Version{V2, Hybrid} {
			t.Run(filepath.Base(src)+" "+v.String(), func(t *testing.T) {
				const pl = 32768
				theirs := filepath.Join(t.TempDir(), "lt.torrent")
				want := runLibtorrent(t, "create", v.String(), strconv.Itoa(pl), src, theirs)
				m, err := Load(theirs)
				if err != nil {
					t.Fatalf("Load libtorrent's torrent: %v", err)
				}
				checkInvariants(t, m)
				if got := ourView(m); !reflect.DeepEqual(got, want) {
					t.Fatalf("we read libtorrent's torrent as\n%+v\nlibtorrent says\n%+v", got, want)
				}
				if m.Info.Version != v {
					t.Errorf("version %s; want %s", m.Info.Version, v)
				}
				if v == Hybrid {
					checkPieceHashes(t, m, src)
				}
				for i := range m.Info.Files {
					f := &m.Info.Files[i]
					if src != multi || f.Padding || f.Length == 0 {
						continue
					}
					root, layer := refTree(contents[strings.Join(f.Path, "/")], pl)
					if f.PiecesRoot != root || layer != nil && !bytes.Equal(layer, m.PieceLayer(f)) {
						t.Errorf("file %q: pieces root or layer differs from the data's", f.Path)
					}
				}

				ours, data := createTorrent(t, src, v, pl)
				p := filepath.Join(t.TempDir(), "ours.torrent")
				writeFile(t, p, data)
				got := runLibtorrent(t, "show", p)
				if !reflect.DeepEqual(got, ourView(ours)) {
					t.Fatalf("libtorrent reads our torrent as\n%+v\nwe say\n%+v", got, ourView(ours))
				}
				// Same data, same piece length, same layout: the info dictionaries are equal.
				if got.v1 != want.v1 || got.v2 != want.v2 {
					t.Errorf("our info-hashes %s %s; libtorrent's torrent of the same data has %s %s", got.v1, got.v2, want.v1, want.v2)
				}
			})
		}
	}
}
