package metainfo

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// streamOf lays a created torrent's file contents out as its byte stream, pad files zeros.
func streamOf(m *MetaInfo, contents map[string][]byte) []byte {
	out := make([]byte, m.Info.TotalLength)
	for _, f := range m.Info.Files {
		if !f.Padding {
			p := strings.Join(f.Path, "/")
			if m.Info.Single {
				p = m.Info.Name
			}
			copy(out[f.Offset:], contents[p])
		}
	}
	return out
}

// TestPieceCheck verifies every piece of a v2-only torrent made by Create from its data
// (files smaller than a piece, of exactly one, of several with a short last one), and finds
// every corrupted piece bad while bytes of the pad after a file's end do not count. A
// hybrid of the same files is checked by SHA-1.
func TestPieceCheck(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	contents := writeTree(t, src, 3, v2Files)
	const pl = 32768
	v2, _ := createTorrent(t, src, V2, pl)
	hy, _ := createTorrent(t, src, Hybrid, pl)
	for _, m := range []*MetaInfo{v2, hy} {
		if err := m.CheckVerifiable(); err != nil {
			t.Fatalf("%s: %v", m.Info.Version, err)
		}
		stream := streamOf(m, contents)
		for i := range m.Info.NumPieces() {
			c, ok := m.PieceCheck(i)
			if !ok || c.V2 != (m.Info.Version == V2) {
				t.Fatalf("%s piece %d: check %+v, %v", m.Info.Version, i, c, ok)
			}
			piece := bytes.Clone(stream[m.Info.PieceOffset(i):][:m.Info.PieceSize(i)])
			if !c.Matches(piece) {
				t.Fatalf("%s piece %d does not match its hash", m.Info.Version, i)
			}
			for _, at := range []int64{0, c.Length / 2, c.Length - 1} {
				piece[at] ^= 0x40
				if c.Matches(piece) {
					t.Fatalf("%s piece %d with byte %d corrupted matches", m.Info.Version, i, at)
				}
				piece[at] ^= 0x40
			}
			if c.V2 && c.Length < int64(len(piece)) {
				piece[len(piece)-1] = 1 // padding: outside the file's tree
				if !c.Matches(piece) {
					t.Fatalf("piece %d: a pad byte counted", i)
				}
			}
			if c.Matches(piece[:c.Length-1]) {
				t.Fatalf("%s piece %d: a short piece matches", m.Info.Version, i)
			}
		}
	}
	// What the checks are for v2: file sizes against pieces.
	want := map[string]struct {
		length int64
		leaves int
	}{"a/x": {5000, 1}, "a/y/one": {pl, 2}, "a-b": {10, 1}, "z/zz/small": {1, 1}}
	for i := range v2.Info.NumPieces() {
		k, _, _ := v2.V2Piece(i)
		w, ok := want[strings.Join(v2.Info.Files[k].Path, "/")]
		if c, _ := v2.PieceCheck(i); ok && (c.Length != w.length || c.Leaves != w.leaves) {
			t.Errorf("piece %d of %v: %d bytes, %d leaves; want %+v", i, v2.Info.Files[k].Path, c.Length, c.Leaves, w)
		}
	}

	// Without its piece layers (an info dictionary from a magnet link) a v2 torrent
	// cannot check the pieces of its files longer than a piece.
	bare := *v2
	bare.PieceLayers = nil
	if err := bare.CheckVerifiable(); err == nil || !strings.Contains(err.Error(), "piece layer") {
		t.Errorf("CheckVerifiable without layers: %v", err)
	}
	for i := range bare.Info.NumPieces() {
		k, _, _ := bare.V2Piece(i)
		_, ok := bare.PieceCheck(i)
		if big := bare.Info.Files[k].Length > pl; ok == big {
			t.Errorf("piece %d (of a file longer than a piece: %v) checkable without layers: %v", i, big, ok)
		}
	}
	if _, ok := v2.PieceCheck(v2.Info.NumPieces()); ok {
		t.Error("a piece past the end has a check")
	}
}

func TestSwarmHash(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, 4, map[string]int{"a": 100, "b": 40000})
	v2, _ := createTorrent(t, src, V2, 16384)
	hy, _ := createTorrent(t, src, Hybrid, 16384)
	if v2.SwarmHash() != v2.InfoHashV2.Truncate() || hy.SwarmHash() != hy.InfoHash {
		t.Errorf("swarm hashes %s (v2 %s), %s (hybrid v1 %s)", v2.SwarmHash(), v2.InfoHashV2, hy.SwarmHash(), hy.InfoHash)
	}
	if mg := v2.Magnet(); mg.SwarmHash() != v2.SwarmHash() {
		t.Errorf("v2 magnet's swarm hash %s", mg.SwarmHash())
	}
	if mg := hy.Magnet(); mg.SwarmHash() != hy.InfoHash {
		t.Errorf("hybrid magnet's swarm hash %s", mg.SwarmHash())
	}
}

// layerData is n bytes quick to make, different in every block.
func layerData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>14 + i>>20)
	}
	return b
}

// TestPieceLayerRanges gets files' piece layers the way a torrent from a magnet link does:
// the ranges PieceLayerRanges asks for, answered by the serving side (FileTree.Answer, what
// we send peers), pass VerifyLayerRange and together are the layer; tampered answers fail.
func TestPieceLayerRanges(t *testing.T) {
	const pl = 16 << 10
	for _, n := range []int{pl + 1, 2 * pl, 3*pl + 5, 512 * pl, 700*pl - 1} {
		data := layerData(n)
		ft := testTree(t, data, pl)
		rs := PieceLayerRanges(int64(n), pl)
		if len(rs) != (ft.NumPieces()+MaxLayerRequest-1)/MaxLayerRequest {
			t.Fatalf("%d bytes: %d ranges for %d pieces", n, len(rs), ft.NumPieces())
		}
		var layer []byte
		for _, r := range rs {
			if err := ft.Check(r); err != nil {
				t.Fatalf("%d bytes: range %+v: %v", n, r, err)
			}
			ans, err := ft.Answer(r, -1, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := VerifyLayerRange(ft.Root, int64(n), pl, r, ans)
			if err != nil {
				t.Fatalf("%d bytes: range %+v: %v", n, r, err)
			}
			for _, h := range got {
				layer = append(layer, h[:]...)
			}
			for _, i := range []int{0, len(ans) - 1} {
				bad := append([]Hash256(nil), ans...)
				bad[i][3] ^= 1
				if _, err := VerifyLayerRange(ft.Root, int64(n), pl, r, bad); !errors.Is(err, ErrHashProof) {
					t.Fatalf("%d bytes: range %+v with hash %d tampered: %v", n, r, i, err)
				}
			}
			if _, err := VerifyLayerRange(ft.Root, int64(n), pl, r, ans[:len(ans)-1]); err == nil {
				t.Fatalf("%d bytes: a short answer passed", n)
			}
			moved := r
			moved.Index += r.Length
			if _, err := VerifyLayerRange(ft.Root, int64(n), pl, moved, ans); err == nil {
				t.Fatalf("%d bytes: the answer to %+v passed for %+v", n, r, moved)
			}
		}
		if !bytes.Equal(layer, ft.layer) {
			t.Fatalf("%d bytes: assembled layer differs", n)
		}
		if err := CheckPieceLayer(layer, ft.Root, int64(n), pl); err != nil {
			t.Fatal(err)
		}
	}
	if rs := PieceLayerRanges(pl, pl); rs != nil {
		t.Errorf("a file of one piece needs ranges %+v", rs)
	}
}

// FuzzVerifyLayerRange feeds the piece-layer checker arbitrary ranges and hashes, seeded with
// honest answers: it must never panic, and what it accepts must be the true layer.
func FuzzVerifyLayerRange(f *testing.F) {
	const pl = 16 << 10
	const n = 5*pl + 100
	data := layerData(n)
	ft := testTree(f, data, pl)
	for _, r := range PieceLayerRanges(n, pl) {
		ans, _ := ft.Answer(r, -1, nil)
		f.Add(uint8(r.BaseLayer), uint16(r.Index), uint16(r.Length), uint8(r.ProofLayers), joinHashes(ans))
	}
	f.Add(uint8(0), uint16(0), uint16(2), uint8(2), make([]byte, 5*Hash256Size))
	f.Fuzz(func(t *testing.T, base uint8, index, length uint16, proof uint8, raw []byte) {
		hs := make([]Hash256, len(raw)/Hash256Size)
		for i := range hs {
			copy(hs[i][:], raw[i*Hash256Size:])
		}
		r := HashRange{BaseLayer: int(base), Index: int(index), Length: int(length), ProofLayers: int(proof)}
		got, err := VerifyLayerRange(ft.Root, n, pl, r, hs)
		if err != nil {
			return
		}
		for i, h := range got {
			if h != ft.PieceHash(r.Index+i) {
				t.Fatalf("a wrong piece hash %d passed", r.Index+i)
			}
		}
	})
}
