package httpserve

import (
	"errors"
	"strconv"
	"strings"
)

// byteRange is bytes [start, start+length) of a file.
type byteRange struct{ start, length int64 }

var (
	// errNoRange: no usable Range header (absent, another unit, several ranges); serve
	// the whole file, as RFC 9110 lets a server ignore Range.
	errNoRange = errors.New("no single byte range")
	// errUnsatisfiable: a malformed range or one wholly past the end: 416.
	errUnsatisfiable = errors.New("range not satisfiable")
)

// parseRange reads a Range header against a file of size bytes. It accepts one range:
// "bytes=a-b", "bytes=a-" or the suffix "bytes=-n"; b past the end is cut to the end.
func parseRange(h string, size int64) (byteRange, error) {
	if h == "" {
		return byteRange{}, errNoRange
	}
	unit, spec, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return byteRange{}, errNoRange
	}
	if strings.Contains(spec, ",") {
		return byteRange{}, errNoRange
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return byteRange{}, errUnsatisfiable
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, ok := parseDigits(last)
		if !ok || n == 0 || size == 0 {
			return byteRange{}, errUnsatisfiable
		}
		n = min(n, size)
		return byteRange{size - n, n}, nil
	}
	a, ok := parseDigits(first)
	if !ok || a >= size {
		return byteRange{}, errUnsatisfiable
	}
	b := size - 1
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return byteRange{}, errUnsatisfiable
		}
		b = min(b, size-1)
	}
	return byteRange{a, b - a + 1}, nil
}

// parseDigits parses a non-negative decimal of ASCII digits only (no sign, no spaces).
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
