package metainfo

import (
	"crypto/sha256"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []any{
		withInfo(singleInfo()),
		withInfo(multiInfo(fileEnt(3, "a", "b"), fileEnt(0, "empty"), fileEnt(40000, "c"))),
		withInfo(multiInfo(
			fileEnt(1, "a"),
			dict{"length": int64(16383), "path": []string{".pad", "16383"}, "attr": "p"},
			dict{"length": int64(10), "path": []string{"caf\xe9"}, "path.utf-8": []string{"café"}},
		)),
		dict{
			"announce":      "udp://t:1",
			"announce-list": []any{[]any{"udp://a", 1}, "udp://b"},
			"url-list":      "http://ws/",
			"comment":       "c",
			"creation date": 1,
			"info":          with(singleInfo(), "private", 1, "name.utf-8", "ü"),
		},
	}
	for _, s := range seeds {
		f.Add(benc(f, s))
	}
	for _, s := range v2Seeds(f) {
		f.Add(s)
	}
	f.Add(splice("d4:name1:a6:pieces20:" + hashes(1) + "12:piece lengthi16384e6:lengthi5ee"))
	f.Add([]byte("d4:info1000000000:abce"))
	f.Add([]byte("d1:x" + string(nested(70)) + "e"))
	f.Add([]byte("d4:infod4:name1:a4:name1:bee"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatal("Parse returned a torrent and an error")
			}
			if !strings.HasPrefix(err.Error(), "invalid torrent: ") {
				t.Fatalf("error %q does not say the torrent is invalid", err)
			}
			return
		}
		checkInvariants(t, m)
		// Whatever Parse accepts must also be accepted by ParseInfo from ut_metadata: the
		// same bytes give the same Info (checkInvariants) whoever serves them.
		for _, tier := range m.Trackers() {
			for _, u := range tier {
				if u == "" || strings.TrimSpace(u) != u {
					t.Fatalf("tracker URL %q is blank or untrimmed", u)
				}
			}
		}
		checkMagnetRoundTrip(t, m.Magnet())
	})
}

// v2Seeds are v2 and hybrid torrents, multi- and single-file, with piece layers.
func v2Seeds(f *testing.F) [][]byte {
	dir := f.TempDir()
	writeTree(f, filepath.Join(dir, "m"), 9, map[string]int{"a": 3, "b/c": 40000, "b/d": 0, "e": 16384})
	if err := os.WriteFile(filepath.Join(dir, "s"), make([]byte, 20000), 0o644); err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, src := range []string{"m", "s"} {
		for _, v := range []Version{V2, Hybrid} {
			_, data := createTorrent(f, filepath.Join(dir, src), v, 16384)
			out = append(out, data)
		}
	}
	return out
}

// FuzzParseFileTree feeds bencoded values to the v2 file tree parser: whatever it accepts has
// clean, distinct paths, and a pieces root exactly on the non-empty files.
func FuzzParseFileTree(f *testing.F) {
	root := strings.Repeat("r", 32)
	for _, tree := range []any{
		dict{"a": dict{"": dict{"length": 1, "pieces root": root}}, "d": dict{"e": dict{"": dict{"length": 0}}}},
		dict{"a": dict{"": dict{"length": 1, "pieces root": root}, "b": dict{}}},
		dict{"..": dict{"": dict{"length": 0}}, "x": 1},
		dict{"": dict{"length": 5}},
		dict{},
		[]any{1},
	} {
		f.Add(benc(f, tree))
	}
	f.Add([]byte("d1:ad0:d6:lengthi-1eeee"))
	f.Fuzz(func(t *testing.T, data []byte) {
		end, err := scanBencode(data, 0, 0)
		if err != nil || end != len(data) {
			return
		}
		files, err := parseFileTree(bval(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid torrent: ") {
				t.Fatalf("error %q does not say the torrent is invalid", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, fl := range files {
			if err := CheckPath(fl.Path); err != nil {
				t.Fatalf("path %q: %v", fl.Path, err)
			}
			if key := strings.Join(fl.Path, "/"); seen[key] {
				t.Fatalf("path %q twice", key)
			} else {
				seen[key] = true
			}
			if fl.Length < 0 || (fl.Length == 0) != fl.PiecesRoot.IsZero() {
				t.Fatalf("file %q: length %d, root %s", fl.Path, fl.Length, fl.PiecesRoot)
			}
		}
		if len(files) == 0 {
			t.Fatal("an empty tree was accepted")
		}
	})
}

// FuzzCheckPieceLayer checks that checkPieceLayer accepts a layer exactly when it has one hash
// per piece and the reference merkle tree over it (padded with zero pieces) has the given root.
func FuzzCheckPieceLayer(f *testing.F) {
	data := randomBytes(rand.New(rand.NewPCG(6, 6)), 5*BlockSize+7)
	for _, shift := range []uint8{0, 1, 2} {
		pl := int64(BlockSize) << shift
		root, layer := refTree(data, pl)
		f.Add(layer, root[:], int64(len(data)), shift)
		f.Add(layer[:len(layer)-1], root[:], int64(len(data)), shift)
	}
	f.Add([]byte{}, make([]byte, 32), int64(0), uint8(0))
	f.Fuzz(func(t *testing.T, layer, rootBytes []byte, length int64, shift uint8) {
		pl := int64(BlockSize) << (shift % 8)
		if length < 0 || length/pl > 1<<12 || len(rootBytes) != Hash256Size {
			return
		}
		root := Hash256(rootBytes)
		err := checkPieceLayer(layer, root, length, pl)
		n := (length + pl - 1) / pl
		if int64(len(layer)) != n*Hash256Size {
			if err == nil {
				t.Fatalf("accepted a %d-byte layer for %d pieces", len(layer), n)
			}
			return
		}
		// The reference: piece hashes as the leaves of a tree of zero-leaf subtrees.
		width := int64(1)
		for width < n {
			width *= 2
		}
		var node func(lo, w int64) Hash256
		node = func(lo, w int64) Hash256 {
			if w == 1 {
				if lo < n {
					return Hash256(layer[lo*Hash256Size : (lo+1)*Hash256Size])
				}
				return zeroSubtree(pl / BlockSize)
			}
			l, r := node(lo, w/2), node(lo+w/2, w/2)
			return sha256.Sum256(append(l[:], r[:]...))
		}
		if want := n > 0 && node(0, width) == root; want != (err == nil) {
			t.Fatalf("checkPieceLayer = %v; the reference tree says match = %v", err, want)
		}
	})
}

func FuzzParseMagnet(f *testing.F) {
	for _, s := range []string{
		"magnet:?xt=urn:btih:" + testHex,
		"magnet:?xt=urn:btih:" + testBase32 + "&dn=a+b%20c&tr=udp%3A%2F%2Fa%3A1&tr=http://b/&x.pe=127.0.0.1:1&ws=http://w/",
		"magnet:?xt.1=urn:btih:" + testHex + "&xt.2=urn:btmh:1220" + strings.Repeat("ab", 32) + "&tr.1=x",
		"magnet:?xt=urn:btih:" + testHex + "&dn=%zz",
		"magnet:?xt=urn:btih:" + testHex + "&dn=Track #1&&tr= x ",
		"MAGNET:?XT=URN:BTIH:" + strings.ToUpper(testHex),
		"magnet:?xt=urn:btmh:12",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMagnet(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid magnet link: ") {
				t.Fatalf("error %q does not say the link is invalid", err)
			}
			return
		}
		checkMagnetRoundTrip(t, m)
	})
}

// FuzzSpans lays out files from the bytes of lengths (one file per byte, scaled) and checks
// that Spans and PieceRange of any range agree with the clipped range.
func FuzzSpans(f *testing.F) {
	f.Add([]byte{10, 0, 30, 0, 5, 0}, uint16(16), int64(8), int64(4), uint8(1))
	f.Add([]byte{0, 0, 200}, uint16(7), int64(-3), int64(math.MaxInt64), uint8(3))
	f.Add([]byte{1}, uint16(1), int64(0), int64(1), uint8(0))
	f.Add([]byte{255, 255, 255, 0, 1}, uint16(1000), int64(math.MaxInt64), int64(1), uint8(9))
	f.Fuzz(func(t *testing.T, lengths []byte, pieceLen uint16, off, n int64, scale uint8) {
		if len(lengths) == 0 || len(lengths) > 1000 || pieceLen == 0 {
			return
		}
		ls := make([]int64, len(lengths))
		var total int64
		for i, b := range lengths {
			ls[i] = int64(b) << (scale % 24) // up to ~4 GiB files
			total += ls[i]
		}
		if total == 0 || total/int64(pieceLen) > 1<<20 {
			return // layout allocates a hash per piece; keep the fuzzer's memory small
		}
		in := layout(int64(pieceLen), ls...)
		checkSpansCover(t, in, off, n)
		first, last := in.PieceRange(off, n)
		spans := in.Spans(off, n)
		if len(spans) == 0 {
			if first <= last {
				t.Fatalf("PieceRange(%d, %d) = %d, %d for an empty range", off, n, first, last)
			}
			return
		}
		s0, sl := spans[0], spans[len(spans)-1]
		start := in.Files[s0.File].Offset + s0.FileOffset
		end := in.Files[sl.File].Offset + sl.FileOffset + sl.Length
		if first != int(start/in.PieceLength) || last != int((end-1)/in.PieceLength) || last >= in.NumPieces() {
			t.Fatalf("PieceRange(%d, %d) = %d, %d; spans cover [%d, %d)", off, n, first, last, start, end)
		}
	})
}

// FuzzVerifyHashes feeds the proof checker answers with arbitrary ranges and hashes, seeded
// with honest answers: it must never panic, and whatever it accepts for a piece's block
// hashes must be the true block hashes.
func FuzzVerifyHashes(f *testing.F) {
	const pieceLen = 32 << 10
	data := testData(5*pieceLen+3000, 11)
	ft := testTree(f, data, pieceLen)
	for p := range ft.NumPieces() {
		r, _ := ft.BlockRequest(p)
		ans, _ := ft.Answer(r, p, blockHashes(data, pieceLen, p))
		f.Add(uint8(r.BaseLayer), uint16(r.Index), uint16(r.Length), uint8(r.ProofLayers), joinHashes(ans))
	}
	r := HashRange{Index: 2, Length: 2, ProofLayers: 3}
	ans, _ := ft.Answer(r, 1, blockHashes(data, pieceLen, 1))
	f.Add(uint8(0), uint16(2), uint16(2), uint8(3), joinHashes(ans))
	f.Fuzz(func(t *testing.T, base uint8, index, length uint16, proof uint8, raw []byte) {
		hs := make([]Hash256, len(raw)/Hash256Size)
		for i := range hs {
			copy(hs[i][:], raw[i*Hash256Size:])
		}
		r := HashRange{BaseLayer: int(base), Index: int(index), Length: int(length), ProofLayers: int(proof)}
		if ft.Verify(r, hs) != nil || r.BaseLayer != 0 || r.Length != 2 || r.NumProofHashes() != 0 {
			return
		}
		p := r.Index / 2
		for i, h := range hs {
			if want := blockHashes(data, pieceLen, p); i < len(want) && h != want[i] {
				t.Fatalf("piece %d: a wrong block hash %d passed", p, i)
			}
		}
	})
}

func joinHashes(hs []Hash256) []byte {
	var b []byte
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}
