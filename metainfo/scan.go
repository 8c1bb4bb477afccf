package metainfo

import (
	"bytes"
	"fmt"
	"strconv"
)

// The bencode reading below works on the input's bytes in place. scanBencode validates a whole
// value once (canonical integers and lengths, string keys, no duplicate keys, bounded nesting)
// without allocating for its contents, so a hostile length claim costs nothing; bval then walks
// the validated bytes. Keeping the bytes rather than building a tree means a value's exact
// encoding is always at hand (the info-hash) and memory never exceeds a small multiple of what
// a caller actually reads.

// maxBencodeDepth bounds dict/list nesting. A torrent nests five deep (top, info, files, file,
// path); the bound keeps recursion on hostile input shallow.
const maxBencodeDepth = 64

// scanBencode checks the value starting at b[pos] and returns the offset just past it.
func scanBencode(b []byte, pos, depth int) (int, error) {
	if pos >= len(b) {
		return 0, fmt.Errorf("at byte %d: data ends where a value should start (truncated)", pos)
	}
	switch c := b[pos]; {
	case c == 'i':
		return scanInt(b, pos)
	case c >= '0' && c <= '9':
		_, end, err := scanString(b, pos)
		return end, err
	case c == 'l':
		if depth >= maxBencodeDepth {
			return 0, fmt.Errorf("at byte %d: nested deeper than %d levels", pos, maxBencodeDepth)
		}
		pos++
		for {
			if pos >= len(b) {
				return 0, fmt.Errorf("at byte %d: list is not terminated (truncated)", pos)
			}
			if b[pos] == 'e' {
				return pos + 1, nil
			}
			var err error
			if pos, err = scanBencode(b, pos, depth+1); err != nil {
				return 0, err
			}
		}
	case c == 'd':
		if depth >= maxBencodeDepth {
			return 0, fmt.Errorf("at byte %d: nested deeper than %d levels", pos, maxBencodeDepth)
		}
		return scanDict(b, pos, depth)
	default:
		return 0, fmt.Errorf("at byte %d: %q does not start a value", pos, c)
	}
}

// scanDict checks a dictionary. Keys out of order are accepted (older creators wrote them so,
// and the info-hash covers the bytes as they are), but a key given twice is not: clients that
// keep the first and clients that keep the last would see different torrents.
func scanDict(b []byte, start, depth int) (int, error) {
	pos := start + 1
	var prev []byte
	var seen map[string]bool // built only once keys are found out of order
	for first := true; ; first = false {
		if pos >= len(b) {
			return 0, fmt.Errorf("at byte %d: dictionary is not terminated (truncated)", pos)
		}
		if b[pos] == 'e' {
			return pos + 1, nil
		}
		if c := b[pos]; c < '0' || c > '9' {
			return 0, fmt.Errorf("at byte %d: dictionary key is not a string", pos)
		}
		key, end, err := scanString(b, pos)
		if err != nil {
			return 0, err
		}
		switch {
		case seen != nil:
		case first || bytes.Compare(key, prev) > 0:
			prev = key
		default:
			// Out of order (or equal): from here on remember every key, starting with the ones
			// already checked, which lie in b[start+1:pos].
			seen = map[string]bool{}
			for p := start + 1; p < pos; {
				k, vs, _ := scanString(b, p)
				seen[string(k)] = true
				p = skipValid(b, vs)
			}
		}
		if seen != nil {
			if seen[string(key)] {
				return 0, fmt.Errorf("at byte %d: key %s appears twice in a dictionary", pos, quote(key))
			}
			seen[string(key)] = true
		}
		if pos, err = scanBencode(b, end, depth+1); err != nil {
			return 0, err
		}
	}
}

func scanInt(b []byte, pos int) (int, error) {
	e := bytes.IndexByte(b[pos:], 'e')
	if e < 0 {
		return 0, fmt.Errorf("at byte %d: integer is not terminated (truncated)", pos)
	}
	if !canonicalInt(b[pos+1 : pos+e]) {
		return 0, fmt.Errorf("at byte %d: malformed integer %s", pos, quote(b[pos:pos+e+1]))
	}
	return pos + e + 1, nil
}

// canonicalInt accepts BEP 3's integers: "0", or digits without a leading zero, optionally
// negative ("-0" is not allowed).
func canonicalInt(d []byte) bool {
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
		if len(d) > 0 && d[0] == '0' {
			return false
		}
	}
	if len(d) == 0 || (d[0] == '0' && len(d) > 1) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// scanString checks a string and returns its contents (aliasing b) and the offset past it.
func scanString(b []byte, pos int) (s []byte, end int, err error) {
	colon := bytes.IndexByte(b[pos:], ':')
	if colon < 0 {
		return nil, 0, fmt.Errorf("at byte %d: string length is not terminated (truncated)", pos)
	}
	digits := b[pos : pos+colon]
	if !canonicalInt(digits) || digits[0] == '-' {
		return nil, 0, fmt.Errorf("at byte %d: malformed string length %s", pos, quote(digits))
	}
	start := pos + colon + 1
	// Compare against what is left before converting, so no claim can overflow or allocate.
	if len(digits) > 18 {
		return nil, 0, fmt.Errorf("at byte %d: string length %s is larger than the data", pos, digits)
	}
	n, _ := strconv.ParseInt(string(digits), 10, 64)
	if n > int64(len(b)-start) {
		return nil, 0, fmt.Errorf("at byte %d: string of %d bytes runs past the end of the data (truncated?)", pos, n)
	}
	return b[start : start+int(n)], start + int(n), nil
}

// quote renders part of the input for an error message, cut short so that a hostile
// megabyte-long name or number cannot flood a log line.
func quote[T ~string | ~[]byte](s T) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(string(s[:limit])) + "..."
	}
	return strconv.Quote(string(s))
}

// bval is the exact encoding of one value that scanBencode accepted.
type bval []byte

func (v bval) kind() byte {
	if len(v) == 0 {
		return 0
	}
	if c := v[0]; c >= '0' && c <= '9' {
		return 's'
	}
	return v[0]
}

func (v bval) kindName() string {
	switch v.kind() {
	case 'd':
		return "a dictionary"
	case 'l':
		return "a list"
	case 'i':
		return "an integer"
	case 's':
		return "a string"
	}
	return "nothing"
}

func (v bval) str() (string, bool) {
	b, ok := v.bytes()
	return string(b), ok
}

// bytes returns a string's contents, aliasing v.
func (v bval) bytes() ([]byte, bool) {
	if v.kind() != 's' {
		return nil, false
	}
	colon := bytes.IndexByte(v, ':')
	return v[colon+1:], true
}

// int returns the integer's value; false also when it does not fit in int64.
func (v bval) int() (int64, bool) {
	if v.kind() != 'i' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v[1:len(v)-1]), 10, 64)
	return n, err == nil
}

// skipValid returns the offset past the valid value at b[pos].
func skipValid(b []byte, pos int) int {
	switch c := b[pos]; {
	case c == 'i':
		return pos + bytes.IndexByte(b[pos:], 'e') + 1
	case c == 'l' || c == 'd':
		pos++
		for b[pos] != 'e' {
			pos = skipValid(b, pos)
		}
		return pos + 1
	default:
		colon := pos + bytes.IndexByte(b[pos:], ':')
		n, _ := strconv.Atoi(string(b[pos:colon]))
		return colon + 1 + n
	}
}

// items yields a list's elements.
func (v bval) items() func(yield func(bval) bool) {
	return func(yield func(bval) bool) {
		if v.kind() != 'l' {
			return
		}
		for pos := 1; v[pos] != 'e'; {
			end := skipValid(v, pos)
			if !yield(v[pos:end]) {
				return
			}
			pos = end
		}
	}
}

// entries yields a dictionary's keys and values in the order they are written.
func (v bval) entries() func(yield func(string, bval) bool) {
	return func(yield func(string, bval) bool) {
		v.walkDict(func(k []byte, val bval) bool { return yield(string(k), val) })
	}
}

// walkDict walks the dictionary at the start of v; v may run on past it.
func (v bval) walkDict(fn func(k []byte, val bval) bool) {
	if v.kind() != 'd' {
		return
	}
	for pos := 1; v[pos] != 'e'; {
		colon := pos + bytes.IndexByte(v[pos:], ':')
		n, _ := strconv.Atoi(string(v[pos:colon]))
		k := v[colon+1 : colon+1+n]
		vs := colon + 1 + n
		ve := skipValid(v, vs)
		if !fn(k, v[vs:ve]) {
			return
		}
		pos = ve
	}
}
