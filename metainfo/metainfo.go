// Package metainfo parses and builds .torrent files (BEP 3, 12, 19) and magnet links (BEP 9),
// and answers geometry questions (which bytes of which file a piece covers).
//
// Everything here is immutable once built: a *MetaInfo and its Info are safe to share between
// goroutines without locking. Every other package may import this one; it imports none of them.
package metainfo

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/anacrolix/torrent/bencode"
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
	// Padding marks BEP 47 pad files (attr "p"): their bytes are zeros and are never shown.
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

// Wire forms of the dictionaries. Several keys occur as different types in the wild
// (url-list as string or list, announce-list with junk), so those are decoded loosely.
type rawMetaInfo struct {
	Info         bencode.Bytes `bencode:"info"`
	Announce     string        `bencode:"announce,omitempty"`
	AnnounceList bencode.Bytes `bencode:"announce-list,omitempty"`
	URLList      bencode.Bytes `bencode:"url-list,omitempty"`
	Comment      string        `bencode:"comment,omitempty"`
	CreatedBy    string        `bencode:"created by,omitempty"`
	CreationDate int64         `bencode:"creation date,omitempty"`
	Encoding     string        `bencode:"encoding,omitempty"`
}

type rawInfo struct {
	Name        string    `bencode:"name"`
	NameUTF8    string    `bencode:"name.utf-8,omitempty"`
	PieceLength int64     `bencode:"piece length"`
	Pieces      []byte    `bencode:"pieces"`
	Private     *int64    `bencode:"private,omitempty"`
	Length      *int64    `bencode:"length,omitempty"`
	Files       []rawFile `bencode:"files,omitempty"`
}

type rawFile struct {
	Length   int64    `bencode:"length"`
	Path     []string `bencode:"path"`
	PathUTF8 []string `bencode:"path.utf-8,omitempty"`
	Attr     string   `bencode:"attr,omitempty"`
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
		return nil, err
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
func Parse(data []byte) (*MetaInfo, error) {
	if len(data) == 0 {
		return nil, invalid("file is empty")
	}
	if data[0] != 'd' {
		return nil, invalid("not a bencoded dictionary")
	}
	var raw rawMetaInfo
	if err := bencode.Unmarshal(data, &raw); err != nil {
		var trailing bencode.ErrUnusedTrailingBytes
		if !errors.As(err, &trailing) {
			return nil, invalid("bad bencoding: %v", err)
		}
		// Some creators append junk (a newline, padding); the dictionary itself is whole.
	}
	if len(raw.Info) == 0 {
		return nil, invalid("no info dictionary")
	}
	info, err := ParseInfo(raw.Info)
	if err != nil {
		return nil, err
	}
	m := &MetaInfo{
		Info:         *info,
		InfoBytes:    bytes.Clone(raw.Info),
		InfoHash:     sha1.Sum(raw.Info),
		Announce:     strings.TrimSpace(raw.Announce),
		Comment:      raw.Comment,
		CreatedBy:    raw.CreatedBy,
		CreationDate: raw.CreationDate,
	}
	m.AnnounceList = parseAnnounceList(raw.AnnounceList)
	m.URLList = parseStringOrList(raw.URLList)
	return m, nil
}

// parseAnnounceList keeps the tiers that are lists of strings and drops what is not: a
// malformed announce-list costs trackers, not the whole torrent.
func parseAnnounceList(b []byte) [][]string {
	if len(b) == 0 {
		return nil
	}
	var tiers []bencode.Bytes
	if bencode.Unmarshal(b, &tiers) != nil {
		return nil
	}
	var out [][]string
	for _, t := range tiers {
		var urls []string
		if bencode.Unmarshal(t, &urls) != nil {
			var one string
			if bencode.Unmarshal(t, &one) != nil {
				continue
			}
			urls = []string{one}
		}
		var clean []string
		for _, u := range urls {
			if u = strings.TrimSpace(u); u != "" {
				clean = append(clean, u)
			}
		}
		if len(clean) > 0 {
			out = append(out, clean)
		}
	}
	return out
}

func parseStringOrList(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	var list []string
	if bencode.Unmarshal(b, &list) != nil {
		var one string
		if bencode.Unmarshal(b, &one) != nil {
			return nil
		}
		list = []string{one}
	}
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ParseInfo decodes and validates a bencoded info dictionary (from a .torrent or from peers
// via ut_metadata).
func ParseInfo(b []byte) (*Info, error) {
	var ri rawInfo
	if err := bencode.Unmarshal(b, &ri); err != nil {
		return nil, invalid("bad info dictionary: %v", err)
	}
	name := ri.Name
	if ri.NameUTF8 != "" {
		name = ri.NameUTF8
	}
	if err := CheckName(name); err != nil {
		return nil, invalid("torrent name %q: %v", name, err)
	}
	if ri.PieceLength <= 0 {
		return nil, invalid("piece length %d is not positive", ri.PieceLength)
	}
	if ri.PieceLength > MaxPieceLength {
		return nil, invalid("piece length %d is larger than %d MiB", ri.PieceLength, MaxPieceLength>>20)
	}
	if len(ri.Pieces)%HashSize != 0 {
		return nil, invalid("pieces field is %d bytes, not a multiple of %d", len(ri.Pieces), HashSize)
	}
	info := &Info{
		Name:        name,
		PieceLength: ri.PieceLength,
		Private:     ri.Private != nil && *ri.Private == 1,
	}
	switch {
	case ri.Length != nil && len(ri.Files) > 0:
		return nil, invalid("both length and files are present")
	case ri.Length != nil:
		if *ri.Length < 0 {
			return nil, invalid("length %d is negative", *ri.Length)
		}
		info.Single = true
		info.Files = []File{{Length: *ri.Length}}
		info.TotalLength = *ri.Length
	case ri.Files != nil:
		if len(ri.Files) == 0 {
			return nil, invalid("files list is empty")
		}
		seen := make(map[string]bool, len(ri.Files))
		for i, rf := range ri.Files {
			p := rf.Path
			if len(rf.PathUTF8) > 0 {
				p = rf.PathUTF8
			}
			if err := CheckPath(p); err != nil {
				return nil, invalid("file %d path %q: %v", i, strings.Join(p, "/"), err)
			}
			if rf.Length < 0 {
				return nil, invalid("file %q: length %d is negative", strings.Join(p, "/"), rf.Length)
			}
			if info.TotalLength+rf.Length < info.TotalLength {
				return nil, invalid("total length overflows")
			}
			pad := strings.Contains(rf.Attr, "p")
			info.Files = append(info.Files, File{
				Path:    append([]string(nil), p...),
				Length:  rf.Length,
				Offset:  info.TotalLength,
				Padding: pad,
			})
			info.TotalLength += rf.Length
			if pad {
				continue // pad files often share names (.pad/N); they are never shown
			}
			key := strings.Join(p, "/")
			if seen[key] {
				return nil, invalid("duplicate file path %q", key)
			}
			seen[key] = true
		}
		// A file may not also be a directory of another file ("a" and "a/b").
		for _, f := range info.Files {
			if f.Padding {
				continue
			}
			for j := 1; j < len(f.Path); j++ {
				if dir := strings.Join(f.Path[:j], "/"); seen[dir] {
					return nil, invalid("path %q is both a file and a directory", dir)
				}
			}
		}
	default:
		return nil, invalid("neither length nor files is present")
	}
	want := (info.TotalLength + info.PieceLength - 1) / info.PieceLength
	if got := int64(len(ri.Pieces) / HashSize); got != want {
		return nil, invalid("%d piece hashes for %d bytes in pieces of %d (want %d)",
			got, info.TotalLength, info.PieceLength, want)
	}
	info.Pieces = make([]Hash, want)
	for i := range info.Pieces {
		copy(info.Pieces[i][:], ri.Pieces[i*HashSize:])
	}
	return info, nil
}

// CheckName validates the torrent's name, which becomes a directory or file name under the
// mount or the data directory.
func CheckName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	return checkComponent(name)
}

// CheckPath validates a file's path below the torrent's name. Unsafe paths are rejected
// rather than rewritten: a rewritten name could collide with another file, and a torrent
// that tries to escape its directory is not one we want to serve.
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
		return fmt.Errorf("component %q would leave the torrent's directory", c)
	case strings.ContainsRune(c, '/'):
		return fmt.Errorf("component %q contains '/'", c)
	case strings.ContainsRune(c, 0):
		return errors.New("component contains a NUL byte")
	case len(c) > 255:
		return fmt.Errorf("component is %d bytes, longer than the 255 a file system allows", len(c))
	}
	return nil
}
