package metainfo

import (
	"math"
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
