package metainfo

import (
	"math"
	"reflect"
	"testing"
)

// layout builds an Info with files of the given lengths laid end to end.
func layout(pieceLength int64, lengths ...int64) *Info {
	in := &Info{Name: "t", PieceLength: pieceLength}
	for i, l := range lengths {
		in.Files = append(in.Files, File{Path: []string{string(rune('a' + i))}, Length: l, Offset: in.TotalLength})
		in.TotalLength += l
	}
	if len(lengths) == 1 {
		in.Single = true
		in.Files[0].Path = nil
	}
	n := (in.TotalLength + pieceLength - 1) / pieceLength
	in.Pieces = make([]Hash, n)
	return in
}

func TestPieceGeometry(t *testing.T) {
	tests := []struct {
		name      string
		in        *Info
		sizes     []int64 // PieceSize of each piece
		blocks    []int   // NumBlocks of each piece
		lastBlock []int   // BlockSizeAt(p, NumBlocks(p)-1)
	}{
		{"exact multiple", layout(32768, 65536), []int64{32768, 32768}, []int{2, 2}, []int{BlockSize, BlockSize}},
		{"short last piece", layout(32768, 40000), []int64{32768, 7232}, []int{2, 1}, []int{BlockSize, 7232}},
		{"one byte torrent", layout(16384, 1), []int64{1}, []int{1}, []int{1}},
		{"piece length not a multiple of 16 KiB", layout(20000, 50000), []int64{20000, 20000, 10000}, []int{2, 2, 1}, []int{3616, 3616, 10000}},
		{"piece smaller than a block", layout(1000, 2500), []int64{1000, 1000, 500}, []int{1, 1, 1}, []int{1000, 1000, 500}},
		{"last piece one byte", layout(16384, 16385), []int64{16384, 1}, []int{1, 1}, []int{BlockSize, 1}},
		{"several files", layout(16384, 10000, 0, 30000, 5), []int64{16384, 16384, 7237}, []int{1, 1, 1}, []int{BlockSize, BlockSize, 7237}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.NumPieces() != len(tt.sizes) {
				t.Fatalf("NumPieces = %d; want %d", in.NumPieces(), len(tt.sizes))
			}
			var sum int64
			for p := range in.NumPieces() {
				if got := in.PieceOffset(p); got != sum {
					t.Errorf("PieceOffset(%d) = %d; want %d", p, got, sum)
				}
				if got := in.PieceSize(p); got != tt.sizes[p] {
					t.Errorf("PieceSize(%d) = %d; want %d", p, got, tt.sizes[p])
				}
				if got := in.NumBlocks(p); got != tt.blocks[p] {
					t.Errorf("NumBlocks(%d) = %d; want %d", p, got, tt.blocks[p])
				}
				var blocks int64
				for b := range in.NumBlocks(p) {
					blocks += int64(in.BlockSizeAt(p, b))
				}
				if blocks != in.PieceSize(p) {
					t.Errorf("blocks of piece %d sum to %d; want %d", p, blocks, in.PieceSize(p))
				}
				if got := in.BlockSizeAt(p, in.NumBlocks(p)-1); got != tt.lastBlock[p] {
					t.Errorf("last block of piece %d = %d; want %d", p, got, tt.lastBlock[p])
				}
				sum += in.PieceSize(p)
			}
			if sum != in.TotalLength {
				t.Errorf("pieces sum to %d; TotalLength %d", sum, in.TotalLength)
			}
			// Out of range asks get zero, never a negative or a full-size answer.
			n := in.NumPieces()
			for _, q := range [][2]int{{-1, 0}, {n, 0}, {0, -1}, {0, in.NumBlocks(0)}, {n - 1, 1 << 20}} {
				if got := in.BlockSizeAt(q[0], q[1]); got != 0 {
					t.Errorf("BlockSizeAt(%d, %d) = %d; want 0", q[0], q[1], got)
				}
			}
			if in.PieceSize(-1) != 0 || in.PieceSize(n) != 0 || in.NumBlocks(n) != 0 {
				t.Errorf("out-of-range piece has a size")
			}
		})
	}
}

func TestPieceRange(t *testing.T) {
	in := layout(100, 250) // pieces [0,100) [100,200) [200,250)
	tests := []struct {
		name        string
		off, n      int64
		first, last int
	}{
		{"first byte", 0, 1, 0, 0},
		{"whole first piece", 0, 100, 0, 0},
		{"one past a piece boundary", 0, 101, 0, 1},
		{"last byte of a piece", 99, 1, 0, 0},
		{"straddles a boundary", 99, 2, 0, 1},
		{"whole torrent", 0, 250, 0, 2},
		{"last byte", 249, 1, 2, 2},
		{"runs past the end is clipped", 150, 1000, 1, 2},
		{"huge length does not overflow", 10, math.MaxInt64, 0, 2},
		{"negative offset is clipped", -50, 60, 0, 0},
		{"negative offset, nothing left", -50, 50, 0, -1},
		{"empty", 10, 0, 0, -1},
		{"negative length", 10, -5, 0, -1},
		{"at the end", 250, 10, 0, -1},
		{"beyond the end", 1000, 10, 0, -1},
		{"max offset", math.MaxInt64, math.MaxInt64, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, last := in.PieceRange(tt.off, tt.n)
			if first != tt.first || last != tt.last {
				t.Fatalf("PieceRange(%d, %d) = %d, %d; want %d, %d", tt.off, tt.n, first, last, tt.first, tt.last)
			}
		})
	}
}

func TestSpans(t *testing.T) {
	// Files: a [0,10) b empty at 10, c [10,40), d empty at 40, e [40,45), f empty at the end.
	multi := layout(16, 10, 0, 30, 0, 5, 0)
	lead := layout(16, 0, 0, 20) // empty files first
	tests := []struct {
		name   string
		in     *Info
		off, n int64
		want   []FileSpan
	}{
		{"inside one file", multi, 2, 3, []FileSpan{{0, 2, 3}}},
		{"exactly one file", multi, 0, 10, []FileSpan{{0, 0, 10}}},
		{"starts at a file boundary, skips the empty file", multi, 10, 5, []FileSpan{{2, 0, 5}}},
		{"ends at a file boundary", multi, 5, 5, []FileSpan{{0, 5, 5}}},
		{"crosses a boundary with an empty file in it", multi, 8, 4, []FileSpan{{0, 8, 2}, {2, 0, 2}}},
		{"a piece spanning three files", multi, 32, 16, []FileSpan{{2, 22, 8}, {4, 0, 5}}},
		{"whole torrent", multi, 0, 45, []FileSpan{{0, 0, 10}, {2, 0, 30}, {4, 0, 5}}},
		{"last byte; the trailing empty file holds nothing", multi, 44, 1, []FileSpan{{4, 4, 1}}},
		{"past the end is clipped", multi, 43, 100, []FileSpan{{4, 3, 2}}},
		{"negative offset is clipped", multi, -3, 5, []FileSpan{{0, 0, 2}}},
		{"huge length", multi, 40, math.MaxInt64, []FileSpan{{4, 0, 5}}},
		{"empty range", multi, 5, 0, nil},
		{"at the end", multi, 45, 1, nil},
		{"leading empty files are skipped", lead, 0, 3, []FileSpan{{2, 0, 3}}},
		{"single file", layout(16, 100), 16, 16, []FileSpan{{0, 16, 16}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.Spans(tt.off, tt.n)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Spans(%d, %d) = %v; want %v", tt.off, tt.n, got, tt.want)
			}
		})
	}
}

// TestSpansOfEveryPiece walks every piece of a layout full of edge cases and checks the spans
// tile the piece exactly.
func TestSpansOfEveryPiece(t *testing.T) {
	in := layout(7, 0, 3, 0, 0, 11, 1, 0, 20, 0)
	for p := range in.NumPieces() {
		off, size := in.PieceOffset(p), in.PieceSize(p)
		checkSpansCover(t, in, off, size)
	}
}

// checkSpansCover asserts that Spans(off, n) covers exactly [off, off+n) clipped to the
// torrent, in order, with no empty or out-of-file spans.
func checkSpansCover(t testing.TB, in *Info, off, n int64) {
	t.Helper()
	total := in.TotalLength
	start := max(min(off, total), 0)
	end := start
	switch {
	case n <= 0 || off >= total:
	case off < 0: // off+n cannot overflow
		end = max(min(off+n, total), start)
	default:
		end = off + min(n, total-off)
	}
	pos := start
	for _, s := range in.Spans(off, n) {
		f := in.Files[s.File]
		if s.Length <= 0 || s.FileOffset < 0 || s.FileOffset+s.Length > f.Length {
			t.Fatalf("Spans(%d, %d): bad span %+v of file length %d", off, n, s, f.Length)
		}
		if f.Offset+s.FileOffset != pos {
			t.Fatalf("Spans(%d, %d): span %+v starts at %d; want %d", off, n, s, f.Offset+s.FileOffset, pos)
		}
		pos += s.Length
	}
	if pos != end {
		t.Fatalf("Spans(%d, %d) cover up to %d; want %d", off, n, pos, end)
	}
}
