// Package metainfo parses and builds .torrent files (BEP 3, 12, 19, 27, 47, and BEP 52's v2
// and hybrid torrents) and magnet links (BEP 9, with BEP 52's btmh hashes), and answers
// geometry questions (which bytes of which file a piece covers). For v2 files it checks and
// builds BEP 52 merkle proofs (merkle.go: FileTree), the hashes peers trade in hash requests.
//
// Every torrent, whatever its version, is presented as one byte stream cut into pieces, the v1
// geometry: a hybrid's v1 file list (with its BEP 47 pad files) is that stream, and a v2-only
// torrent gets the same layout with pad files so that each file starts on a piece boundary.
// A v2 or hybrid torrent adds its v2 info-hash, each file's pieces root and the checked piece
// layers; a v2-only one has no v1 piece hashes (Info.Pieces is nil) and no v1 info-hash: its
// swarm is named by the v2 one truncated (SwarmHash), and its pieces are verified by the
// merkle roots of their blocks against the piece layers (PieceCheck, verify.go). An info
// dictionary alone (ParseInfo, from a magnet link) has no piece layers; PieceLayerRanges and
// VerifyLayerRange are how peers' hash messages fill them in.
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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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
	// InfoHash is the v1 info-hash, the SHA-1 of InfoBytes; zero for a v2-only torrent.
	InfoHash Hash
	// InfoHashV2 is the v2 info-hash, the SHA-256 of InfoBytes; zero for a v1-only torrent.
	// Handshakes, trackers and the DHT use its first 20 bytes (Hash256.Truncate).
	InfoHashV2 Hash256
	// PieceLayers holds the BEP 52 piece layer of every v2 file longer than one piece, keyed
	// by its pieces root, checked against that root; see PieceLayer.
	PieceLayers map[Hash256][]byte

	Announce     string
	AnnounceList [][]string // BEP 12 tiers; empty when the file has none
	URLList      []string   // BEP 19 web seeds
	Comment      string
	CreatedBy    string
	CreationDate int64 // Unix seconds; 0 when absent
}

// Info is the info dictionary: what the info-hash commits to.
type Info struct {
	Name string
	// Version says whether the dictionary is v1, v2 or both. The geometry below is v1's for
	// v1 and hybrid torrents; a v2-only torrent gets the geometry a hybrid of it would have,
	// with pad files so that every non-empty file starts on a piece boundary.
	Version     Version
	PieceLength int64
	// Pieces are the v1 piece hashes; nil for a v2-only torrent (NumPieces counts pieces
	// from the geometry either way).
	Pieces  []Hash
	Private bool
	// Files lists every file in torrent order, pad files included. A single-file torrent has
	// one entry whose Path is empty; Single tells the two layouts apart.
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
	// PiecesRoot is the root of the file's BEP 52 merkle tree; zero in v1 torrents, for pad
	// files and for empty files.
	PiecesRoot Hash256
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

// PieceLayer returns the SHA-256 hashes of a v2 file's pieces, concatenated, one per piece:
// the torrent's piece layer for a file longer than a piece, the pieces root for a shorter one
// (whose one piece hashes to it), nil for an empty file, a pad file or a v1 torrent.
func (m *MetaInfo) PieceLayer(f *File) []byte {
	switch {
	case f.PiecesRoot.IsZero():
		return nil
	case f.Length <= m.Info.PieceLength:
		return bytes.Clone(f.PiecesRoot[:])
	}
	return m.PieceLayers[f.PiecesRoot]
}

// Magnet returns the magnet link for this torrent, with its info-hashes, name, trackers and
// web seeds.
func (m *MetaInfo) Magnet() *Magnet {
	mg := &Magnet{InfoHash: m.InfoHash, InfoHashV2: m.InfoHashV2, DisplayName: m.Info.Name, WebSeeds: m.URLList}
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
	var info, layers bval
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
		case "piece layers":
			layers = v
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
	if in.Version.HasV1() {
		m.InfoHash = sha1.Sum(info)
	}
	if in.Version.HasV2() {
		m.InfoHashV2 = sha256.Sum256(info)
		if m.PieceLayers, err = parsePieceLayers(layers, in); err != nil {
			return nil, err
		}
	}
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
	metaVersion    bval
	fileTree       bval
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
			f.metaVersion = v
		case "file tree":
			f.fileTree = v
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
	// BEP 52: meta version 2 makes a v2 torrent, and the file tree is then read; without it a
	// file tree is ignored, as libtorrent does. Other versions are incompatible by definition.
	var tree []File
	if f.metaVersion != nil {
		if n, err := intField("meta version", f.metaVersion); err != nil {
			return nil, err
		} else if n != 2 {
			return nil, invalid("meta version %d is not supported (only 2 is)", n)
		}
		if f.fileTree == nil {
			return nil, invalid("meta version 2 but no file tree")
		}
		if err := checkV2PieceLength(info.PieceLength); err != nil {
			return nil, err
		}
		if tree, err = parseFileTree(f.fileTree); err != nil {
			return nil, err
		}
		if f.pieces == nil && f.length == nil && f.files == nil {
			info.Version = V2
			if err := layoutV2(info, tree); err != nil {
				return nil, err
			}
			if info.TotalLength == 0 {
				return nil, invalid("torrent holds no data (total length 0)")
			}
			return info, nil
		}
		info.Version = Hybrid
	}
	if err := parseV1Files(info, f); err != nil {
		return nil, err
	}
	if tree != nil {
		if err := matchHybrid(info, tree); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// parseV1Files reads the v1 layout (length or files) and the piece hashes into info.
func parseV1Files(info *Info, f infoFields) error {
	if f.pieces == nil {
		return invalid("pieces is missing")
	}
	pieces, ok := f.pieces.bytes()
	if !ok {
		return invalid("pieces is %s, not a string", f.pieces.kindName())
	}
	if len(pieces)%HashSize != 0 {
		return invalid("pieces field is %d bytes, not a multiple of %d", len(pieces), HashSize)
	}
	switch {
	case f.length != nil && f.files != nil:
		return invalid("both length and files are present")
	case f.length != nil:
		n, err := intField("length", f.length)
		if err != nil {
			return err
		}
		if n < 0 {
			return invalid("length %d is negative", n)
		}
		info.Single = true
		info.Files = []File{{Length: n}}
		info.TotalLength = n
	case f.files != nil:
		if err := parseFiles(info, f.files); err != nil {
			return err
		}
	default:
		return invalid("neither length nor files is present")
	}
	if info.TotalLength == 0 {
		return invalid("torrent holds no data (total length 0)")
	}
	want := info.TotalLength / info.PieceLength
	if info.TotalLength%info.PieceLength != 0 {
		want++
	}
	if got := int64(len(pieces) / HashSize); got != want {
		return invalid("%d piece hashes for %d bytes in pieces of %d (want %d)",
			got, info.TotalLength, info.PieceLength, want)
	}
	info.Pieces = make([]Hash, want)
	for i := range info.Pieces {
		copy(info.Pieces[i][:], pieces[i*HashSize:])
	}
	return nil
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
	}
	if len(info.Files) == 0 {
		return invalid("files list is empty")
	}
	return checkPaths(info.Files)
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
