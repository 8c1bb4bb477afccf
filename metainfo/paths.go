package metainfo

// The path policy: what a torrent's name and its files' paths may be, and how Parse makes
// an over-long name fit. The rules are written out at CheckPath.

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxComponentLength is the longest file or directory name, in bytes, that Linux file systems
// accept (NAME_MAX).
const MaxComponentLength = 255

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
