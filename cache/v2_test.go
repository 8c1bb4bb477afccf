package cache

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"torrentfs/metainfo"
)

// v2Torrent writes files (relative path -> length, random bytes; "zeros" files all zeros)
// under DIR/name and makes a v2-only torrent of them with metainfo.Create. It returns the
// torrent, DIR, and the torrent's byte stream (pad files zeros).
func v2Torrent(t *testing.T, name string, pieceLen int64, files map[string]int) (*metainfo.MetaInfo, string, []byte) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(len(files)), uint64(pieceLen)))
	contents := map[string][]byte{}
	for rel, n := range files {
		b := make([]byte, n)
		if !strings.HasPrefix(filepath.Base(rel), "zeros") {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
		contents[rel] = b
		p := filepath.Join(dir, name, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	if len(files) == 1 {
		for rel := range files {
			path = filepath.Join(dir, name, rel)
		}
	}
	mi, _, err := metainfo.Create(t.Context(), path, metainfo.CreateOptions{Version: metainfo.V2, PieceLength: pieceLen, NoDate: true, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if mi.Info.Version != metainfo.V2 || mi.Info.Pieces != nil {
		t.Fatalf("made a %s torrent with %d v1 hashes", mi.Info.Version, len(mi.Info.Pieces))
	}
	stream := make([]byte, mi.Info.TotalLength)
	for _, f := range mi.Info.Files {
		if f.Padding {
			continue
		}
		rel := strings.Join(f.Path, "/")
		if mi.Info.Single {
			rel = mi.Info.Name
		}
		copy(stream[f.Offset:], contents[rel])
	}
	if len(files) == 1 {
		// A single file sits at DIR/<its name>, where the storage looks for it.
		dir = filepath.Join(dir, name)
	}
	return mi, dir, stream
}

// v2CacheFiles has files smaller than a piece, of exactly one piece, of several pieces
// with a short last one, and several pieces of zeros.
var v2CacheFiles = map[string]int{
	"small.txt":   5000,
	"one.bin":     32 * kib,
	"big.bin":     3*32*kib + 7000,
	"d/tiny":      1,
	"d/zeros.bin": 2*32*kib + 100,
}

// A v2-only torrent's pieces are verified by SHA-256 merkle roots, live (HashPiece after
// writes, what the swarm's disk workers do) and at start (Check): correct pieces pass, a
// piece with one wrong byte fails, in every kind of file.
func TestV2OnlyVerify(t *testing.T) {
	mi, _, stream := v2Torrent(t, "v2set", 32*kib, v2CacheFiles)
	info := &mi.Info
	dir := t.TempDir()
	s, err := Open(dir, mi, Options{Log: nil})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range info.NumPieces() {
		writePiece(t, s, stream, i, nil)
		verify(t, s, i, true)
	}
	// Corrupt one byte of each piece's file data in turn (never its pad): it fails, and
	// passes again once rewritten.
	for i := range info.NumPieces() {
		c, ok := mi.PieceCheck(i)
		if !ok || !c.V2 {
			t.Fatalf("piece %d: check %+v %v", i, c, ok)
		}
		at := info.PieceOffset(i) + c.Length/2
		bad := []byte{stream[at] ^ 0x80}
		if err := s.WriteBlock(i, int(c.Length/2), bad); err != nil {
			t.Fatal(err)
		}
		verify(t, s, i, false)
		if err := s.WriteBlock(i, int(c.Length/2), stream[at:at+1]); err != nil {
			t.Fatal(err)
		}
		verify(t, s, i, true)
	}

	// Check at start: every piece of the data as written is found; a corrupted byte in
	// big.bin's second piece and the loss of small.txt leave exactly those pieces out.
	have, err := s.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if have.Count() != info.NumPieces() {
		t.Fatalf("Check found %d of %d pieces", have.Count(), info.NumPieces())
	}
	s.Close()
	big := filepath.Join(dir, "v2set", "big.bin")
	b, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	b[32*kib+5] ^= 1
	if err := os.WriteFile(big, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "v2set", "small.txt")); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, mi, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	have, err = s2.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range info.NumPieces() {
		k, pf, _ := mi.V2Piece(i)
		p := strings.Join(info.Files[k].Path, "/")
		want := !(p == "big.bin" && pf == 1) && p != "small.txt"
		if have.Has(i) != want {
			t.Errorf("piece %d (%s piece %d): Check says %v", i, p, pf, have.Has(i))
		}
	}
}

// An all-zero v2 file kept as a hole (a sparse copy) passes Check without data blocks, as
// for v1: the zero sums are per shape of check, the short last piece's too.
func TestV2OnlyCheckZeroHoles(t *testing.T) {
	mi, src, _ := v2Torrent(t, "z", 32*kib, map[string]int{"zeros.bin": 3*32*kib + 5000, "x.bin": 100})
	p := filepath.Join(src, "z", "zeros.bin")
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 3*32*kib+5000); err != nil { // all hole
		t.Fatal(err)
	}
	s, err := Open(src, mi, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	have, err := s.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if have.Count() != mi.Info.NumPieces() {
		t.Errorf("Check found %d of %d pieces", have.Count(), mi.Info.NumPieces())
	}
}

// A single-file v2-only torrent (no pad files; its last piece short) of several pieces.
func TestV2OnlySingleFile(t *testing.T) {
	mi, src, stream := v2Torrent(t, "solo", 16*kib, map[string]int{"solo.bin": 5*16*kib + 300})
	if !mi.Info.Single || mi.Info.TotalLength != int64(len(stream)) {
		t.Fatalf("layout %+v", mi.Info)
	}
	s, err := Open(src, mi, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	have, err := s.Check(context.Background(), nil)
	if err != nil || have.Count() != mi.Info.NumPieces() {
		t.Fatalf("Check found %d of %d pieces: %v", have.Count(), mi.Info.NumPieces(), err)
	}
	for i := range mi.Info.NumPieces() {
		verify(t, s, i, true)
	}
	buf := make([]byte, len(stream))
	if _, err := s.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, stream) {
		t.Fatalf("ReadAt: %v", err)
	}
}

// Open refuses a v2-only torrent without the piece layers its files longer than a piece
// need (an info dictionary alone), and two v2-only torrents of the same shape have
// different resume-file ids (the pieces roots stand in for the piece hashes).
func TestV2OnlyOpenAndResumeID(t *testing.T) {
	mi, _, _ := v2Torrent(t, "v2set", 32*kib, v2CacheFiles)
	bare := *mi
	bare.PieceLayers = nil
	if _, err := Open(t.TempDir(), &bare, Options{}); err == nil || !strings.Contains(err.Error(), "piece layer") {
		t.Errorf("Open without piece layers: %v", err)
	}
	other := *mi
	other.Info.Files = append([]metainfo.File(nil), mi.Info.Files...)
	for i := range other.Info.Files {
		if !other.Info.Files[i].PiecesRoot.IsZero() {
			other.Info.Files[i].PiecesRoot[0] ^= 1
			other.PieceLayers = nil // not opened: only the id is compared
			break
		}
	}
	a := &Storage{mi: mi, info: &mi.Info}
	b := &Storage{mi: &other, info: &other.Info}
	if a.torrentID() == b.torrentID() {
		t.Error("two v2-only torrents with different roots share a resume id")
	}
}
