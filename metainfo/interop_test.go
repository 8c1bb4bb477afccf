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
	"strings"
	"testing"
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
