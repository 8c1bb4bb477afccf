package httpserve

import (
	"errors"
	"testing"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	tests := []struct {
		h    string
		size int64
		want byteRange
		err  error
	}{
		{"", size, byteRange{}, errNoRange},
		{"bytes=0-99", size, byteRange{0, 100}, nil},
		{"bytes=500-599", size, byteRange{500, 100}, nil},
		{"bytes=900-", size, byteRange{900, 100}, nil},
		{"bytes=-100", size, byteRange{900, 100}, nil},
		{"bytes=-5000", size, byteRange{0, 1000}, nil},
		{"bytes=990-5000", size, byteRange{990, 10}, nil},
		{"bytes=999-999", size, byteRange{999, 1}, nil},
		{"Bytes = 1-2", size, byteRange{1, 2}, nil},
		{"bytes=1000-", size, byteRange{}, errUnsatisfiable},
		{"bytes=1000-1001", size, byteRange{}, errUnsatisfiable},
		{"bytes=-0", size, byteRange{}, errUnsatisfiable},
		{"bytes=5-4", size, byteRange{}, errUnsatisfiable},
		{"bytes=-", size, byteRange{}, errUnsatisfiable},
		{"bytes=abc", size, byteRange{}, errUnsatisfiable},
		{"bytes=+1-2", size, byteRange{}, errUnsatisfiable},
		{"bytes=1--2", size, byteRange{}, errUnsatisfiable},
		{"bytes=99999999999999999999-", size, byteRange{}, errUnsatisfiable},
		{"bytes=0-0", 0, byteRange{}, errUnsatisfiable},
		{"bytes=-1", 0, byteRange{}, errUnsatisfiable},
		{"bytes=0-1,5-6", size, byteRange{}, errNoRange},
		{"items=0-1", size, byteRange{}, errNoRange},
		{"bytes", size, byteRange{}, errNoRange},
	}
	for _, tc := range tests {
		got, err := parseRange(tc.h, tc.size)
		if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
			t.Errorf("parseRange(%q, %d) = %+v, %v; want %+v, %v", tc.h, tc.size, got, err, tc.want, tc.err)
		}
	}
}

// FuzzParseRange: any header gives a range inside the file, or an error.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=7-", "bytes=1-0", "bytes=0-1,2-3", "x=1"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		r, err := parseRange(h, size)
		if err != nil {
			return
		}
		if r.start < 0 || r.length <= 0 || r.start+r.length > size {
			t.Fatalf("parseRange(%q, %d) = %+v: outside the file", h, size, r)
		}
	})
}
