package metainfo

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

// refTree is a reference BEP 52 merkle tree of one file's data, written the plain recursive
// way (not the production code's in-place layers): leaves are SHA-256 of 16 KiB blocks, padded
// with zero hashes to a power of two. It returns the root and the piece layer (nil for a file
// of at most one piece).
func refTree(data []byte, pieceLen int64) (root Hash256, layer []byte) {
	var leaves []Hash256
	for off := 0; off < len(data); off += BlockSize {
		leaves = append(leaves, sha256.Sum256(data[off:min(off+BlockSize, len(data))]))
	}
	width := 1
	for width < len(leaves) {
		width *= 2
	}
	// node returns the hash over leaves [lo, lo+n).
	var node func(lo, n int) Hash256
	node = func(lo, n int) Hash256 {
		if n == 1 {
			if lo < len(leaves) {
				return leaves[lo]
			}
			return Hash256{}
		}
		l, r := node(lo, n/2), node(lo+n/2, n/2)
		return sha256.Sum256(append(l[:], r[:]...))
	}
	root = node(0, width)
	if int64(len(data)) > pieceLen {
		per := int(pieceLen / BlockSize)
		for lo := 0; lo < len(leaves); lo += per {
			h := node(lo, per)
			layer = append(layer, h[:]...)
		}
	}
	return root, layer
}

// checkV2Invariants asserts what Parse promises about a v2 or hybrid torrent.
func checkV2Invariants(t testing.TB, m *MetaInfo) {
	t.Helper()
	in := &m.Info
	if err := checkV2PieceLength(in.PieceLength); err != nil {
		t.Fatal(err)
	}
	if in.Version == V2 && in.Pieces != nil {
		t.Fatalf("v2-only torrent has %d v1 piece hashes", len(in.Pieces))
	}
	pieces := 0
	for i := range in.Files {
		f := &in.Files[i]
		layer := m.PieceLayer(f)
		if f.Padding || f.Length == 0 {
			if !f.PiecesRoot.IsZero() || layer != nil {
				t.Fatalf("file %q (pad %v, %d bytes) has a pieces root or layer", f.Path, f.Padding, f.Length)
			}
			continue
		}
		if f.PiecesRoot.IsZero() || f.Offset%in.PieceLength != 0 {
			t.Fatalf("file %q at %d has root %s", f.Path, f.Offset, f.PiecesRoot)
		}
		n := int((f.Length + in.PieceLength - 1) / in.PieceLength)
		pieces += n
		if len(layer) != n*Hash256Size {
			t.Fatalf("file %q: PieceLayer is %d bytes for %d pieces", f.Path, len(layer), n)
		}
		if n > 1 {
			if err := checkPieceLayer(layer, f.PiecesRoot, f.Length, in.PieceLength); err != nil {
				t.Fatalf("file %q: %v", f.Path, err)
			}
		}
	}
	if pieces != in.NumPieces() {
		t.Fatalf("files have %d v2 pieces; NumPieces %d", pieces, in.NumPieces())
	}
}

// writeTree writes files (relative path -> length) of random bytes under dir and returns
// their contents.
func writeTree(t testing.TB, dir string, seed uint64, files map[string]int) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	out := map[string][]byte{}
	for rel, n := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		out[rel] = randomBytes(rng, n)
		if err := os.WriteFile(p, out[rel], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// v2Files is a multi-file layout for 32 KiB pieces: smaller than a piece, exactly one, several
// with a short last one, empty, and names whose byte order differs from tree order ("a-b" <
// "a/x" as strings, but the directory "a" sorts before "a-b" in the tree).
var v2Files = map[string]int{
	"a/x":        5000,
	"a/y/one":    32768,
	"a-b":        10,
	"big.bin":    100000,
	"empty":      0,
	"z/exact":    65536,
	"z/zz/small": 1,
}

func createTorrent(t testing.TB, src string, v Version, pieceLen int64) (*MetaInfo, []byte) {
	t.Helper()
	m, data, err := Create(t.Context(), src, CreateOptions{Version: v, PieceLength: pieceLen, NoDate: true, Workers: 2})
	if err != nil {
		t.Fatalf("Create %s: %v", v, err)
	}
	return m, data
}

func TestCreateV2(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	contents := writeTree(t, src, 1, v2Files)
	const pl = 32768
	v2, _ := createTorrent(t, src, V2, pl)
	hy, _ := createTorrent(t, src, Hybrid, pl)
	v1, _ := createTorrent(t, src, V1, pl)
	for _, m := range []*MetaInfo{v2, hy} {
		checkInvariants(t, m)
		if m.InfoHashV2.IsZero() {
			t.Fatalf("%s torrent without a v2 info-hash", m.Info.Version)
		}
		var order []string
		for i := range m.Info.Files {
			f := &m.Info.Files[i]
			if f.Padding {
				continue
			}
			p := strings.Join(f.Path, "/")
			order = append(order, p)
			root, layer := refTree(contents[p], pl)
			if f.Length > 0 && root != f.PiecesRoot {
				t.Errorf("%s %s: pieces root %s; the reference tree says %s", m.Info.Version, p, f.PiecesRoot, root)
			}
			if layer != nil && !bytes.Equal(layer, m.PieceLayer(f)) {
				t.Errorf("%s %s: piece layer differs from the reference tree's", m.Info.Version, p)
			}
		}
		want := []string{"a/x", "a/y/one", "a-b", "big.bin", "empty", "z/exact", "z/zz/small"}
		if !reflect.DeepEqual(order, want) {
			t.Errorf("%s file order %q; want tree order %q", m.Info.Version, order, want)
		}
	}
	if v2.Info.Version != V2 || hy.Info.Version != Hybrid || v1.Info.Version != V1 {
		t.Fatalf("versions %s %s %s", v2.Info.Version, hy.Info.Version, v1.Info.Version)
	}
	// The v2-only torrent's geometry is the hybrid's v1 view of the same data.
	if !reflect.DeepEqual(v2.Info.Files, hy.Info.Files) || v2.Info.TotalLength != hy.Info.TotalLength {
		t.Errorf("v2 layout %+v differs from the hybrid's %+v", v2.Info.Files, hy.Info.Files)
	}
	if v2.InfoHash != (Hash{}) || v1.InfoHashV2 != (Hash256{}) || v1.PieceLayers != nil {
		t.Errorf("hashes of the missing version are set")
	}
	checkPieceHashes(t, hy, src) // the hybrid's v1 hashes cover the data and the pad files' zeros
	mg := hy.Magnet().String()
	if !strings.Contains(mg, "xt=urn:btih:"+hy.InfoHash.HexString()) || !strings.Contains(mg, "xt=urn:btmh:1220"+hy.InfoHashV2.HexString()) {
		t.Errorf("hybrid magnet %s lacks a hash", mg)
	}
	if mg := v2.Magnet().String(); strings.Contains(mg, "btih") || !strings.Contains(mg, v2.InfoHashV2.HexString()) {
		t.Errorf("v2 magnet %s", mg)
	}
}

func TestCreateV2SingleFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "one.bin")
	data := randomBytes(rand.New(rand.NewPCG(3, 3)), 70000)
	writeFile(t, src, data)
	root, layer := refTree(data, 16384)
	for _, v := range []Version{V2, Hybrid} {
		m, _ := createTorrent(t, src, v, 16384)
		checkInvariants(t, m)
		f := &m.Info.Files[0]
		if !m.Info.Single || len(m.Info.Files) != 1 || m.Info.Name != "one.bin" || f.PiecesRoot != root ||
			!bytes.Equal(m.PieceLayer(f), layer) || m.Info.NumPieces() != 5 {
			t.Errorf("%s: %+v", v, m.Info)
		}
	}
}

// decodeTorrent decodes a .torrent into maps for a test to change and encode again.
func decodeTorrent(t testing.TB, data []byte) dict {
	t.Helper()
	var d dict
	if err := bencode.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestParseV2Invalid changes valid v2 and hybrid torrents in one way each; every change must
// be refused with a clear error.
func TestParseV2Invalid(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src, 4, map[string]int{"a": 5000, "big": 100000, "d/e": 0, "d/f": 40000})
	_, v2data := createTorrent(t, src, V2, 32768)
	_, hydata := createTorrent(t, src, Hybrid, 32768)
	one := filepath.Join(dir, "one")
	writeFile(t, one, make([]byte, 40000))
	_, hyOne := createTorrent(t, one, Hybrid, 16384)

	// mutate returns the torrent base with change applied to its decoded form.
	mutate := func(base []byte, change func(top, info, tree dict)) []byte {
		top := decodeTorrent(t, base)
		info := top["info"].(dict)
		change(top, info, info["file tree"].(dict))
		return benc(t, top)
	}
	leaf := func(tree dict, path ...string) dict {
		for _, c := range path {
			tree = tree[c].(dict)
		}
		return tree[""].(dict)
	}
	layerOf := func(top, tree dict) (string, string) {
		root := leaf(tree, "big")["pieces root"].(string)
		return root, top["piece layers"].(dict)[root].(string)
	}
	v2 := func(change func(top, info, tree dict)) []byte { return mutate(v2data, change) }
	hy := func(change func(top, info, tree dict)) []byte { return mutate(hydata, change) }
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"piece length not a power of two", v2(func(_, info, _ dict) { info["piece length"] = 49152 }), "piece length 49152 of a v2 torrent is not a power of two of at least 16 KiB"},
		{"piece length below 16 KiB", v2(func(_, info, _ dict) { info["piece length"] = 8192 }), "not a power of two of at least 16 KiB"},
		{"meta version 3", v2(func(_, info, _ dict) { info["meta version"] = 3 }), "meta version 3 is not supported"},
		{"meta version 1", v2(func(_, info, _ dict) { info["meta version"] = 1 }), "meta version 1 is not supported"},
		{"meta version a string", v2(func(_, info, _ dict) { info["meta version"] = "2" }), "meta version is a string, not an integer"},
		{"meta version 2 without a file tree", v2(func(_, info, _ dict) { delete(info, "file tree") }), "meta version 2 but no file tree"},
		{"file tree a list", v2(func(_, info, _ dict) { info["file tree"] = []any{} }), "file tree is a list, not a dictionary"},
		{"file tree empty", v2(func(_, info, _ dict) { info["file tree"] = dict{} }), "file tree is empty"},
		{"empty directory", v2(func(_, _, tree dict) { tree["x"] = dict{} }), `directory "x" is empty`},
		{"entry not a dictionary", v2(func(_, _, tree dict) { tree["x"] = 5 }), `entry "x" is an integer, not a dictionary`},
		{"file that is also a directory", v2(func(_, _, tree dict) { tree["d"].(dict)[""] = dict{"length": 0} }), `"d" is both a file and a directory`},
		{"file properties not a dictionary", v2(func(_, _, tree dict) { tree["a"] = dict{"": "x"} }), `file tree file "a" is a string, not a dictionary`},
		{"file without length", v2(func(_, _, tree dict) { delete(leaf(tree, "a"), "length") }), `file "a" length is missing`},
		{"negative length", v2(func(_, _, tree dict) { leaf(tree, "d", "e")["length"] = -1 }), `file "d/e": length -1 is negative`},
		{"file without pieces root", v2(func(_, _, tree dict) { delete(leaf(tree, "a"), "pieces root") }), `file "a" has no pieces root`},
		{"pieces root too short", v2(func(_, _, tree dict) { leaf(tree, "a")["pieces root"] = "abc" }), `pieces root is not a 32-byte string`},
		{"pieces root all zeros", v2(func(_, _, tree dict) { leaf(tree, "a")["pieces root"] = string(make([]byte, 32)) }), `file "a": pieces root is all zeros`},
		{"pieces root an integer", v2(func(_, _, tree dict) { leaf(tree, "a")["pieces root"] = 7 }), `pieces root is not a 32-byte string`},
		{"empty file with a pieces root", v2(func(_, _, tree dict) { leaf(tree, "d", "e")["pieces root"] = strings.Repeat("r", 32) }), `empty file "d/e" has a pieces root`},
		{"all files empty", v2(func(top, info, _ dict) {
			info["file tree"] = dict{"e": dict{"": dict{"length": 0}}, "f": dict{"": dict{"length": 0}}}
		}), "total length 0"},
		{"path component ..", v2(func(_, _, tree dict) { tree[".."] = tree["a"] }), `component ".." would leave`},
		{"path component with a slash", v2(func(_, _, tree dict) { tree["x/y"] = tree["a"] }), "contains '/'"},
		{"path component with NUL", v2(func(_, _, tree dict) { tree["x\x00"] = tree["a"] }), "NUL byte"},
		{"path component only white space", v2(func(_, _, tree dict) { tree[" "] = tree["a"] }), "only white space"},
		{"file at the root of the tree", v2(func(_, _, tree dict) { tree[""] = leaf(tree, "a") }), "both a file and a directory"},
		{"a file tree that is one file", v2(func(_, info, tree dict) { info["file tree"] = dict{"": leaf(tree, "a")} }), "path is empty"},
		{"duplicate paths after shortening", v2(func(_, _, tree dict) {
			long := strings.Repeat("x", 300)
			tree[long+"1"], tree[long+"2"] = tree["a"], tree["a"]
		}), "duplicate file path"},
		{"piece layers missing", v2(func(top, _, _ dict) { delete(top, "piece layers") }), `file "src/big" has no piece layer`},
		{"piece layers not a dictionary", v2(func(top, _, _ dict) { top["piece layers"] = "x" }), "piece layers is a string, not a dictionary"},
		{"layer of the file missing", v2(func(top, _, _ dict) { top["piece layers"] = dict{strings.Repeat("r", 32): "x"} }), `file "src/big" has no piece layer`},
		{"layer not a string", v2(func(top, _, tree dict) {
			root, _ := layerOf(top, tree)
			top["piece layers"].(dict)[root] = 1
		}), `piece layer of file "src/big" is an integer, not a string`},
		{"layer one hash short", v2(func(top, _, tree dict) {
			root, layer := layerOf(top, tree)
			top["piece layers"].(dict)[root] = layer[:len(layer)-32]
		}), "piece layer is 96 bytes; want 128 (4 hashes of 4 pieces)"},
		{"layer one byte long", v2(func(top, _, tree dict) {
			root, layer := layerOf(top, tree)
			top["piece layers"].(dict)[root] = layer + "x"
		}), "piece layer is 129 bytes"},
		{"layer with a wrong hash", v2(func(top, _, tree dict) {
			root, layer := layerOf(top, tree)
			top["piece layers"].(dict)[root] = "X" + layer[1:]
		}), "hashes to"},
		{"root that the layer does not hash to", v2(func(top, _, tree dict) {
			_, layer := layerOf(top, tree)
			bad := strings.Repeat("r", 32)
			leaf(tree, "big")["pieces root"] = bad
			top["piece layers"] = dict{bad: layer}
		}), "not the pieces root 7272"},
		{"hybrid: a v1 length differs", hy(func(_, info, _ dict) {
			info["files"].([]any)[0].(dict)["length"] = 4999
		}), `hybrid torrent: v1 file 0 is "a" (4999 bytes) but the v2 file tree has "a" (5000 bytes) there`},
		{"hybrid: a v1 path differs", hy(func(_, info, _ dict) {
			info["files"].([]any)[0].(dict)["path"] = []any{"b"}
		}), `v1 file 0 is "b" (5000 bytes) but the v2 file tree has "a"`},
		{"hybrid: v1 files in another order", hy(func(_, info, _ dict) {
			f := info["files"].([]any)
			f[4], f[5] = f[5], f[4] // d/e (empty) and d/f
		}), `v1 file 2 is "d/f"`},
		{"hybrid: a file only in v1", hy(func(_, info, _ dict) {
			info["files"] = append(info["files"].([]any), dict{"length": 0, "path": []any{"extra"}})
		}), `v1 file "extra" is not in the v2 file tree`},
		{"hybrid: a file only in v2", hy(func(_, _, tree dict) { tree["zz"] = dict{"": dict{"length": 0}} }), `v2 file "zz" is not in the v1 file list`},
		{"hybrid: pad files left out", hy(func(_, info, _ dict) {
			var files []any
			var total int64
			for _, f := range info["files"].([]any) {
				if f.(dict)["attr"] == nil {
					files = append(files, f)
					total += f.(dict)["length"].(int64)
				}
			}
			info["files"] = files
			info["pieces"] = hashes(int((total + 32767) / 32768))
		}), `file "big" starts at byte 5000, not on a piece boundary`},
		{"hybrid: a pad file a piece too long", hy(func(_, info, _ dict) {
			pad := info["files"].([]any)[1].(dict)
			pad["length"] = pad["length"].(int64) + 32768
			info["pieces"] = hashes(8)
		}), "the v1 layout has 8 pieces but the v2 files have 7"},
		{"hybrid: v1 pieces missing", hy(func(_, info, _ dict) { delete(info, "pieces") }), "pieces is missing"},
		{"hybrid: v1 piece count wrong", hy(func(_, info, _ dict) { info["pieces"] = hashes(2) }), "2 piece hashes"},
		{"hybrid: v1 single file named unlike the tree's file", mutate(hyOne, func(_, info, _ dict) { info["name"] = "other" }),
			`v1 file 0 is "other" (40000 bytes) but the v2 file tree has "one" (40000 bytes)`},
		{"hybrid: v2 layers checked too", hy(func(top, _, _ dict) { delete(top, "piece layers") }), "has no piece layer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", m.Info)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "invalid torrent: ") {
				t.Fatalf("error %q; want one containing %q", err, tt.wantErr)
			}
		})
	}

	// What is accepted: layers no file needs are dropped, and a file tree without meta
	// version is not read at all (libtorrent reads such a torrent as v1).
	m, err := Parse(v2(func(top, _, tree dict) {
		top["piece layers"].(dict)[strings.Repeat("r", 32)] = "junk"
		top["piece layers"].(dict)[leaf(tree, "a")["pieces root"].(string)] = "junk"
	}))
	if err != nil {
		t.Fatalf("extra piece layers: %v", err)
	}
	checkInvariants(t, m)
	if len(m.PieceLayers) != 2 {
		t.Errorf("kept %d piece layers; want the two of big and d/f", len(m.PieceLayers))
	}
	m, err = Parse(hy(func(_, info, _ dict) { delete(info, "meta version"); info["file tree"] = 5 }))
	if err != nil || m.Info.Version != V1 || !m.InfoHashV2.IsZero() {
		t.Errorf("hybrid without meta version: %v, version %s", err, m.Info.Version)
	}
}

// TestParseV2Layout checks the v1-style geometry of a v2-only torrent: pad files before every
// file that must start on a piece boundary, piece counts from the geometry.
func TestParseV2Layout(t *testing.T) {
	root := func(b byte) string { return strings.Repeat(string(b), 32) }
	tree := dict{
		"a": dict{"": dict{"length": 10, "pieces root": root('a')}},
		"b": dict{"": dict{"length": 0}},
		"c": dict{"d": dict{"": dict{"length": 16384, "pieces root": root('d')}}},
		"e": dict{"": dict{"length": 20000, "pieces root": root('e')}},
	}
	info := dict{"name": "t", "piece length": 16384, "meta version": 2, "file tree": tree}
	// e is 2 pieces: its layer is two hashes whose root (no padding needed) is the pieces root.
	l0, l1 := Hash256{1}, Hash256{2}
	eRoot := hashPair(l0, l1)
	tree["e"].(dict)[""].(dict)["pieces root"] = string(eRoot[:])
	top := dict{"info": info, "piece layers": dict{string(eRoot[:]): string(l0[:]) + string(l1[:])}}
	m, err := Parse(benc(t, top))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, m)
	type fl struct {
		path   string
		length int64
		offset int64
		pad    bool
	}
	var got []fl
	for _, f := range m.Info.Files {
		got = append(got, fl{strings.Join(f.Path, "/"), f.Length, f.Offset, f.Padding})
	}
	want := []fl{{"a", 10, 0, false}, {".pad/16374", 16374, 10, true}, {"b", 0, 16384, false},
		{"c/d", 16384, 16384, false}, {"e", 20000, 32768, false}, {".pad/12768", 12768, 52768, true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("files %+v; want %+v", got, want)
	}
	in := &m.Info
	if in.Version != V2 || in.Single || in.Pieces != nil || in.TotalLength != 65536 || in.NumPieces() != 4 ||
		in.PieceSize(3) != 16384 || in.Name != "t" {
		t.Fatalf("info %+v, %d pieces", in, in.NumPieces())
	}
	if got := m.PieceLayer(&in.Files[4]); !bytes.Equal(got, append(l0[:], l1[:]...)) {
		t.Errorf("PieceLayer(e) = %x", got)
	}
	if got := m.PieceLayer(&in.Files[0]); string(got) != root('a') {
		t.Errorf("PieceLayer(a) = %x; want its pieces root", got)
	}
	if m.PieceLayer(&in.Files[1]) != nil || m.PieceLayer(&in.Files[2]) != nil {
		t.Errorf("an empty or pad file has a piece layer")
	}
	// The same info dictionary from peers (ut_metadata) has no piece layers, and needs none.
	again, err := ParseInfo(m.InfoBytes)
	if err != nil || !reflect.DeepEqual(*again, m.Info) {
		t.Fatalf("ParseInfo: %v", err)
	}

	// One file at the top of the tree is a single-file torrent named after it.
	info["file tree"] = dict{"only": tree["a"]}
	m, err = Parse(benc(t, dict{"info": info}))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Info.Single || m.Info.Name != "only" || len(m.Info.Files) != 1 || m.Info.Files[0].Path != nil {
		t.Fatalf("single-file v2: %+v", m.Info)
	}
}

func TestMerkleRoot(t *testing.T) {
	data := randomBytes(rand.New(rand.NewPCG(5, 5)), 5*BlockSize+3)
	for _, pl := range []int64{BlockSize, 2 * BlockSize, 4 * BlockSize, 8 * BlockSize} {
		root, layer := refTree(data, pl)
		if pl*int64(len(layer)/Hash256Size) < int64(len(data)) {
			continue // one piece: no layer
		}
		if err := checkPieceLayer(layer, root, int64(len(data)), pl); err != nil {
			t.Errorf("piece length %d: %v", pl, err)
		}
		// pieceRootV2 gives each layer hash from the piece's bytes.
		per := int(pl / BlockSize)
		for i := 0; i*int(pl) < len(data); i++ {
			got := pieceRootV2(data[i*int(pl):min((i+1)*int(pl), len(data))], per, make([]Hash256, per))
			if !bytes.Equal(got[:], layer[i*Hash256Size:(i+1)*Hash256Size]) {
				t.Errorf("piece length %d: piece %d hashes to %s", pl, i, got)
			}
		}
	}
	// A file of at most one piece: the root is over its own blocks, not a whole piece's.
	root, _ := refTree(data, 8*BlockSize)
	if got := pieceRootV2(data, 6, make([]Hash256, 8)); got != root {
		t.Errorf("small file root %s; want %s", got, root)
	}
	if z := zeroSubtree(4); z != hashPair(hashPair(Hash256{}, Hash256{}), hashPair(Hash256{}, Hash256{})) {
		t.Errorf("zeroSubtree(4) = %s", z)
	}
}
