// Package metainfo parses and builds .torrent files (BEP 3, 12, 19, 27, 47) and magnet links
// (BEP 9), and answers geometry questions (which bytes of which file a piece covers).
//
// Everything here is immutable once built: a *MetaInfo and its Info are safe to share between
// goroutines without locking, and the package keeps no mutable state of its own. Every other
// package may import this one; it imports none of them.
//
// Parsing is strict where the info-hash commits (the info dictionary: anything ambiguous is
// rejected, because another client reading the same bytes differently would serve different
// data under the same hash) and loose outside it (a broken comment or announce-list costs that
// field, not the torrent). File names become directory entries under a mount or a data
// directory, so every name and path component is checked by CheckName / CheckPath; the policy
// is written out at CheckPath.
package metainfo

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// HashSize is the length of a SHA-1 digest: an info-hash or one piece hash.
const HashSize = 20

// MaxPieceLength bounds the piece length we accept. Real torrents stay at or below 64 MiB; a
// larger claim is almost always garbage and would make one piece buffer enormous.
const MaxPieceLength = 256 << 20

// MaxFileSize bounds the .torrent files we read, so a hostile or mistaken path cannot make us
// buffer gigabytes.
const MaxFileSize = 64 << 20

// MaxComponentLength is the longest file or directory name, in bytes, that Linux file systems
// accept (NAME_MAX).
const MaxComponentLength = 255

// Hash is a SHA-1 digest: an info-hash or the hash of one piece.
type Hash [HashSize]byte

// HexString returns the digest in lower-case hex, the form trackers' web pages and `info` show.
func (h Hash) HexString() string { return hex.EncodeToString(h[:]) }

func (h Hash) String() string { return h.HexString() }

// MetaInfo is a parsed .torrent file.
type MetaInfo struct {
	Info Info
	// InfoBytes are the exact bytes of the info dictionary as they appear in the file; the
	// info-hash is their SHA-1 and they are what ut_metadata serves.
	InfoBytes []byte
	InfoHash  Hash

	Announce     string
	AnnounceList [][]string // BEP 12 tiers; empty when the file has none
	URLList      []string   // BEP 19 web seeds
	Comment      string
	CreatedBy    string
	CreationDate int64 // Unix seconds; 0 when absent
}

// Info is the info dictionary: what the info-hash commits to.
type Info struct {
	Name        string
	PieceLength int64
	Pieces      []Hash
	Private     bool
	// Files lists every file in torrent order. A single-file torrent has one entry whose Path
	// is empty; Single tells the two layouts apart.
	Files  []File
	Single bool
	// TotalLength is the sum of the file lengths.
	TotalLength int64
}

// File is one file of a torrent and where it sits in the torrent's byte stream.
type File struct {
	// Path is the file's path below the torrent's name, each component sanitized; empty for
	// the one file of a single-file torrent.
	Path   []string
	Length int64
	// Offset is the position of the file's first byte in the concatenation of all files.
	Offset int64
	// Padding marks BEP 47 pad files (attr "p", or BitComet's older "_____padding_file_"
	// names): their bytes are zeros and they are never shown or written as files. Their paths
	// pass CheckPath but may repeat or clash with real files' directories.
	Padding bool
}

// DisplayPath is the file's path as a user sees it, starting with the torrent's name.
func (i *Info) DisplayPath(f *File) string {
	return strings.Join(append([]string{i.Name}, f.Path...), "/")
}

// Trackers returns the announce URLs grouped in tiers: the announce-list when present (BEP 12
// says it then replaces announce), else the lone announce URL as one tier.
func (m *MetaInfo) Trackers() [][]string {
	var tiers [][]string
	for _, tier := range m.AnnounceList {
		var t []string
		for _, u := range tier {
			if u != "" {
				t = append(t, u)
			}
		}
		if len(t) > 0 {
			tiers = append(tiers, t)
		}
	}
	if len(tiers) == 0 && m.Announce != "" {
		tiers = [][]string{{m.Announce}}
	}
	return tiers
}

// Magnet returns the magnet link for this torrent, with its name, trackers and web seeds.
func (m *MetaInfo) Magnet() *Magnet {
	mg := &Magnet{InfoHash: m.InfoHash, DisplayName: m.Info.Name, WebSeeds: m.URLList}
	for _, tier := range m.Trackers() {
		mg.Trackers = append(mg.Trackers, tier...)
	}
	return mg
}

// ParseError is what Parse returns for input that is not a usable torrent.
type ParseError struct{ Msg string }

func (e *ParseError) Error() string { return "invalid torrent: " + e.Msg }

func invalid(format string, args ...any) error {
	return &ParseError{Msg: fmt.Sprintf(format, args...)}
}

// Load reads and parses a .torrent file.
func Load(path string) (*MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load torrent: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w", path, invalid("file is larger than %d MiB", MaxFileSize>>20))
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse decodes a .torrent file and validates it. The info-hash is computed over the info
// dictionary's bytes exactly as they appear in data, never over a re-encoding.
//
// Bytes after the top-level dictionary are ignored: some creators append a newline or padding,
// and they are outside everything the info-hash commits to.
func Parse(data []byte) (*MetaInfo, error) {
	if len(data) == 0 {
		return nil, invalid("file is empty")
	}
	if data[0] != 'd' {
		return nil, invalid("not a bencoded dictionary")
	}
	end, err := scanBencode(data, 0, 0)
	if err != nil {
		return nil, invalid("bad bencoding: %v", err)
	}
	top := bval(data[:end])
	m := &MetaInfo{}
	var info bval
	var comment, commentUTF8 string
	for k, v := range top.entries() {
		switch k {
		case "info":
			info = v
		case "announce":
			if s, ok := v.str(); ok {
				m.Announce = strings.TrimSpace(s)
			}
		case "announce-list":
			m.AnnounceList = parseAnnounceList(v)
		case "url-list":
			m.URLList = parseStringOrList(v)
		case "comment":
			comment, _ = v.str()
		case "comment.utf-8":
			commentUTF8, _ = v.str()
		case "created by":
			m.CreatedBy, _ = v.str()
		case "creation date":
			m.CreationDate, _ = v.int()
		}
	}
	m.Comment = preferUTF8(commentUTF8, comment)
	if info == nil {
		return nil, invalid("no info dictionary")
	}
	if info.kind() != 'd' {
		return nil, invalid("info is %s, not a dictionary", info.kindName())
	}
	in, err := parseInfo(info)
	if err != nil {
		return nil, err
	}
	m.Info = *in
	m.InfoBytes = bytes.Clone(info)
	m.InfoHash = sha1.Sum(info)
	return m, nil
}

// parseAnnounceList keeps the tiers that are lists of strings (or a lone string) and drops what
// is not: a malformed announce-list costs trackers, not the whole torrent. A URL listed twice is
// kept only where it first appears, so it is not announced to twice.
func parseAnnounceList(v bval) [][]string {
	if v.kind() != 'l' {
		return nil
	}
	seen := map[string]bool{}
	var out [][]string
	for t := range v.items() {
		var clean []string
		for _, u := range parseStringOrList(t) {
			if !seen[u] {
				seen[u] = true
				clean = append(clean, u)
			}
		}
		if len(clean) > 0 {
			out = append(out, clean)
		}
	}
	return out
}

// parseStringOrList reads BEP 19's url-list, which creators write either as one string or as
// a list; items that are not strings are dropped.
func parseStringOrList(v bval) []string {
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	switch v.kind() {
	case 's':
		s, _ := v.str()
		add(s)
	case 'l':
		for it := range v.items() {
			if s, ok := it.str(); ok {
				add(s)
			}
		}
	}
	return out
}

// preferUTF8 picks the ".utf-8" variant of a field when it is present and really is UTF-8;
// otherwise the plain field, which may be in a legacy encoding and is kept as raw bytes.
func preferUTF8(utf8Variant, plain string) string {
	if utf8Variant != "" && utf8.ValidString(utf8Variant) {
		return utf8Variant
	}
	return plain
}

// ParseInfo decodes and validates a bencoded info dictionary (from a .torrent or from peers
// via ut_metadata). b must be exactly one dictionary, with nothing after it.
func ParseInfo(b []byte) (*Info, error) {
	if len(b) == 0 || b[0] != 'd' {
		return nil, invalid("info is not a bencoded dictionary")
	}
	end, err := scanBencode(b, 0, 0)
	if err != nil {
		return nil, invalid("bad bencoding in info dictionary: %v", err)
	}
	if end != len(b) {
		return nil, invalid("%d bytes after the info dictionary", len(b)-end)
	}
	return parseInfo(bval(b))
}

// infoFields are the info dictionary's keys we read, before validation.
type infoFields struct {
	name, nameUTF8 string
	pieceLength    bval
	pieces         bval
	private        bool
	length, files  bval
	metaVersion    int64
}

func parseInfo(d bval) (*Info, error) {
	var f infoFields
	for k, v := range d.entries() {
		var ok bool
		switch k {
		case "name":
			if f.name, ok = v.str(); !ok {
				return nil, invalid("name is %s, not a string", v.kindName())
			}
		case "name.utf-8":
			f.nameUTF8, _ = v.str()
		case "piece length":
			f.pieceLength = v
		case "pieces":
			f.pieces = v
		case "private":
			f.private = parsePrivate(v)
		case "length":
			f.length = v
		case "files":
			f.files = v
		case "meta version":
			f.metaVersion, _ = v.int()
		}
	}
	rawName := preferUTF8(f.nameUTF8, f.name)
	if rawName == "" {
		return nil, invalid("torrent has no name")
	}
	name, err := sanitizeComponent(rawName)
	if err != nil {
		return nil, invalid("torrent name %s: %v", quote(rawName), err)
	}
	info := &Info{Name: name, Private: f.private}
	if info.PieceLength, err = intField("piece length", f.pieceLength); err != nil {
		return nil, err
	}
	if info.PieceLength <= 0 {
		return nil, invalid("piece length %d is not positive", info.PieceLength)
	}
	if info.PieceLength > MaxPieceLength {
		return nil, invalid("piece length %d is larger than %d MiB", info.PieceLength, MaxPieceLength>>20)
	}
	if f.pieces == nil {
		return nil, invalid("pieces is missing")
	}
	pieces, ok := f.pieces.bytes()
	if !ok {
		return nil, invalid("pieces is %s, not a string", f.pieces.kindName())
	}
	if len(pieces)%HashSize != 0 {
		return nil, invalid("pieces field is %d bytes, not a multiple of %d", len(pieces), HashSize)
	}
	switch {
	case f.length != nil && f.files != nil:
		return nil, invalid("both length and files are present")
	case f.length != nil:
		n, err := intField("length", f.length)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, invalid("length %d is negative", n)
		}
		info.Single = true
		info.Files = []File{{Length: n}}
		info.TotalLength = n
	case f.files != nil:
		if err := parseFiles(info, f.files); err != nil {
			return nil, err
		}
	case f.metaVersion == 2:
		return nil, invalid("BitTorrent v2-only torrent (meta version 2, no v1 file list) is not supported")
	default:
		return nil, invalid("neither length nor files is present")
	}
	if info.TotalLength == 0 {
		return nil, invalid("torrent holds no data (total length 0)")
	}
	want := info.TotalLength / info.PieceLength
	if info.TotalLength%info.PieceLength != 0 {
		want++
	}
	if got := int64(len(pieces) / HashSize); got != want {
		return nil, invalid("%d piece hashes for %d bytes in pieces of %d (want %d)",
			got, info.TotalLength, info.PieceLength, want)
	}
	info.Pieces = make([]Hash, want)
	for i := range info.Pieces {
		copy(info.Pieces[i][:], pieces[i*HashSize:])
	}
	return info, nil
}

// parsePrivate reads BEP 27's flag. The BEP says private=1; any other non-zero integer is also
// taken as private (as libtorrent does), because wrongly treating a private torrent as public
// leaks its peers to DHT and PEX while the reverse only costs peers. A string holding a number
// is read the same way; other types mean not private.
func parsePrivate(v bval) bool {
	if n, ok := v.int(); ok {
		return n != 0
	}
	if v.kind() == 'i' {
		return true // an integer too large for int64 is certainly not zero
	}
	if s, ok := v.str(); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return err == nil && n != 0
	}
	return false
}

func intField(name string, v bval) (int64, error) {
	if v == nil {
		return 0, invalid("%s is missing", name)
	}
	n, ok := v.int()
	if !ok {
		if v.kind() == 'i' {
			return 0, invalid("%s %s does not fit in 64 bits", name, quote(v))
		}
		return 0, invalid("%s is %s, not an integer", name, v.kindName())
	}
	return n, nil
}

// parseFiles reads a multi-file torrent's files list into info.Files and info.TotalLength.
func parseFiles(info *Info, files bval) error {
	if files.kind() != 'l' {
		return invalid("files is %s, not a list", files.kindName())
	}
	seen := map[string]bool{}
	i := 0
	for fv := range files.items() {
		f, err := parseFile(i, fv)
		if err != nil {
			return err
		}
		i++
		if info.TotalLength+f.Length < info.TotalLength {
			return invalid("total length overflows")
		}
		f.Offset = info.TotalLength
		info.TotalLength += f.Length
		info.Files = append(info.Files, f)
		if f.Padding {
			continue // pad files often share names (.pad/N); they are never shown
		}
		key := strings.Join(f.Path, "/")
		if seen[key] {
			return invalid("duplicate file path %s", quote(key))
		}
		seen[key] = true
	}
	if len(info.Files) == 0 {
		return invalid("files list is empty")
	}
	// A file may not also be a directory of another file ("a" and "a/b").
	for _, f := range info.Files {
		if f.Padding {
			continue
		}
		for j := 1; j < len(f.Path); j++ {
			if dir := strings.Join(f.Path[:j], "/"); seen[dir] {
				return invalid("path %s is both a file and a directory", quote(dir))
			}
		}
	}
	return nil
}

// bitCometPadPrefix starts the names BitComet gave pad files before BEP 47's attr existed;
// libtorrent treats them as pad files too.
const bitCometPadPrefix = "_____padding_file_"

func parseFile(i int, fv bval) (File, error) {
	var f File
	if fv.kind() != 'd' {
		return f, invalid("file %d is %s, not a dictionary", i, fv.kindName())
	}
	var length, path, pathUTF8 bval
	for k, v := range fv.entries() {
		switch k {
		case "length":
			length = v
		case "path":
			path = v
		case "path.utf-8":
			pathUTF8 = v
		case "attr":
			// Only "p" matters here. BEP 47 symlinks ("l" with "symlink path") are kept as the
			// empty regular files they are in the byte stream: a link target is never followed
			// or shown, so it cannot point out of the mount.
			if s, ok := v.str(); ok {
				f.Padding = strings.Contains(s, "p")
			}
		}
	}
	if path == nil {
		return f, invalid("file %d has no path", i)
	}
	p, err := pathList(path)
	if err != nil {
		return f, invalid("file %d path: %v", i, err)
	}
	if pu, err := pathList(pathUTF8); err == nil && len(pu) > 0 && validUTF8(pu) {
		p = pu
	}
	if f.Path, err = sanitizePath(p); err != nil {
		return f, invalid("file %d path %s: %v", i, quote(strings.Join(p, "/")), err)
	}
	if f.Length, err = intField(fmt.Sprintf("file %d length", i), length); err != nil {
		return f, err
	}
	if f.Length < 0 {
		return f, invalid("file %s: length %d is negative", quote(strings.Join(p, "/")), f.Length)
	}
	if strings.HasPrefix(f.Path[len(f.Path)-1], bitCometPadPrefix) {
		f.Padding = true
	}
	return f, nil
}

func pathList(v bval) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	if v.kind() != 'l' {
		return nil, fmt.Errorf("path is %s, not a list", v.kindName())
	}
	var p []string
	for c := range v.items() {
		s, ok := c.str()
		if !ok {
			return nil, fmt.Errorf("path component is %s, not a string", c.kindName())
		}
		p = append(p, s)
	}
	return p, nil
}

func validUTF8(p []string) bool {
	for _, c := range p {
		if !utf8.ValidString(c) {
			return false
		}
	}
	return true
}

// CheckName validates the torrent's name, which becomes a directory or file name under the
// mount or the data directory. The rules are those of one path component (see CheckPath).
func CheckName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	return checkComponent(name)
}

// CheckPath validates a file's path below the torrent's name; Parse guarantees that every
// File.Path passes it. The policy, per case:
//
//   - Rejected: an empty path; an empty component (which is also how an absolute path looks
//     as a list: a leading ""); "." and ".."; '/' or NUL inside a component; a component that
//     is only white space; a component longer than MaxComponentLength bytes. Rewriting these
//     could collide with another file, and a torrent that tries to leave its directory is not
//     one we want to serve.
//   - Neutralized by Parse before this check: a component longer than MaxComponentLength is
//     cut to fit, keeping a short extension. Such names are common in the wild (CJK titles
//     take three bytes a character) and harmless once shortened; if shortening makes two
//     paths equal, Parse rejects the torrent as having a duplicate path.
//   - Accepted as they are: bytes that are not UTF-8 (Linux names are bytes; legacy-encoded
//     torrents have them when there is no path.utf-8), backslashes, control characters other
//     than NUL, and leading or trailing spaces.
func CheckPath(p []string) error {
	if len(p) == 0 {
		return errors.New("path is empty")
	}
	for _, c := range p {
		if c == "" {
			return errors.New("path has an empty component")
		}
		if err := checkComponent(c); err != nil {
			return err
		}
	}
	return nil
}

func checkComponent(c string) error {
	switch {
	case c == "." || c == "..":
		return fmt.Errorf("component %s would leave the torrent's directory", quote(c))
	case strings.ContainsRune(c, '/'):
		return fmt.Errorf("component %s contains '/'", quote(c))
	case strings.IndexByte(c, 0) >= 0:
		return errors.New("component contains a NUL byte")
	case strings.TrimFunc(c, unicode.IsSpace) == "":
		return fmt.Errorf("component %s is only white space", quote(c))
	case len(c) > MaxComponentLength:
		return fmt.Errorf("component is %d bytes, longer than the %d a file system allows", len(c), MaxComponentLength)
	}
	return nil
}

func sanitizePath(p []string) ([]string, error) {
	if len(p) == 0 {
		return nil, errors.New("path is empty")
	}
	out := make([]string, len(p))
	for i, c := range p {
		if c == "" {
			return nil, errors.New("path has an empty component")
		}
		var err error
		if out[i], err = sanitizeComponent(c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sanitizeComponent shortens an over-long component and then checks it. The unsafe bytes are
// looked for in the whole original, so cutting cannot hide them.
func sanitizeComponent(c string) (string, error) {
	if len(c) > MaxComponentLength {
		if strings.ContainsAny(c, "/\x00") || c == "." || c == ".." {
			return "", checkComponent(c)
		}
		c = shortenComponent(c)
	}
	return c, checkComponent(c)
}

// maxKeptExtension is the longest extension (with its dot) kept when a name is shortened, so
// "long title.mkv" stays playable by extension-sniffing programs.
const maxKeptExtension = 16

func shortenComponent(c string) string {
	var ext string
	if i := strings.LastIndexByte(c, '.'); i > 0 && len(c)-i <= maxKeptExtension {
		ext = c[i:]
	}
	keep := MaxComponentLength - len(ext)
	// Do not cut a UTF-8 sequence in two; a sequence is at most 4 bytes, so for non-UTF-8
	// names this backs off at most 3 bytes.
	for n := 0; n < utf8.UTFMax-1 && keep > 0 && !utf8.RuneStart(c[keep]); n++ {
		keep--
	}
	return c[:keep] + ext
}

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
