package metainfo

// Building .torrent files from data on disk. Create walks the path, then one reader goroutine
// reads the files as one sequential byte stream in large chunks while hasher goroutines
// (one per core) hash whole pieces of those chunks. Create's own goroutine collects the
// hashes and calls the progress callback; it owns the result. Memory is bounded by the chunk
// buffers in flight: (workers+2) chunks of max(4 MiB, piece length).

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/anacrolix/torrent/bencode"
)

// Piece lengths Create picks from or accepts.
const (
	MinCreatePieceLength = 16 << 10
	MaxAutoPieceLength   = 16 << 20
	// autoPieceTarget is the piece count automatic sizing aims at: enough pieces that a
	// swarm can spread them, few enough that the .torrent stays small (30 KiB of hashes).
	autoPieceTarget = 1500
	// readChunk is the smallest read Create issues: small reads cost a syscall each and
	// let the disk idle between them.
	readChunk = 4 << 20
)

// CreateOptions says what goes into a torrent besides the data.
type CreateOptions struct {
	// Announce lists tracker URLs in tiers (BEP 12). The first URL is also the announce
	// key, for clients that predate tiers.
	Announce [][]string
	// PieceLength is a power of two >= 16 KiB; 0 picks one with AutoPieceLength.
	PieceLength int64
	Private     bool
	Comment     string
	WebSeeds    []string // BEP 19 url-list
	// NoDate leaves out the creation date so the same data gives byte-identical files.
	NoDate bool
	// CreationDate is the date recorded unless NoDate; zero means now.
	CreationDate time.Time
	// CreatedBy names the program; empty means "torrentfs".
	CreatedBy string
	// Workers is how many goroutines hash; 0 means runtime.NumCPU().
	Workers int
	// Progress, if set, is called with the number of bytes hashed so far and the total, from
	// Create's goroutine, never concurrently with itself.
	Progress func(hashed, total int64)
}

// AutoPieceLength picks the power of two closest (on a log scale) to total/1500, within
// 16 KiB..16 MiB.
func AutoPieceLength(total int64) int64 {
	if total <= 0 {
		return MinCreatePieceLength
	}
	target := float64(total) / autoPieceTarget
	p := int64(MinCreatePieceLength)
	// Step up while the next power of two is nearer to the target in ratio terms:
	// 2p is nearer than p when target/p > 2p/target, i.e. target^2 > 2p^2.
	for p < MaxAutoPieceLength && target*target > 2*float64(p)*float64(p) {
		p *= 2
	}
	return p
}

// CheckCreatePieceLength reports whether n is a piece length Create accepts.
func CheckCreatePieceLength(n int64) error {
	switch {
	case n < MinCreatePieceLength:
		return fmt.Errorf("piece length %d is smaller than 16 KiB", n)
	case n > MaxPieceLength:
		return fmt.Errorf("piece length %d is larger than %d MiB", n, MaxPieceLength>>20)
	case bits.OnesCount64(uint64(n)) != 1:
		return fmt.Errorf("piece length %d is not a power of two", n)
	}
	return nil
}

// sourceFile is one file found on disk and where it goes in the torrent.
type sourceFile struct {
	disk   string   // path to open
	path   []string // path below the torrent's name; nil for a single-file torrent
	length int64
}

// Create makes a torrent of the file or directory at path: a file gives a single-file
// torrent, a directory a multi-file torrent named after it. It returns the parsed torrent
// and the bytes of the .torrent file, whose keys are sorted as BEP 3 requires.
//
// Files are taken in byte-wise order of their whole paths below path, hidden files included. Symbolic links are followed (the file appears under the link's name); a link
// to one of its own ancestor directories is an error, as are broken links and special files
// (devices, pipes, sockets). Empty directories cannot be represented and are left out. A
// torrent of zero bytes is refused: no client can do anything with it.
func Create(ctx context.Context, path string, opts CreateOptions) (*MetaInfo, []byte, error) {
	if opts.PieceLength != 0 {
		if err := CheckCreatePieceLength(opts.PieceLength); err != nil {
			return nil, nil, err
		}
	}
	name, files, single, err := collect(path)
	if err != nil {
		return nil, nil, err
	}
	var total int64
	for _, f := range files {
		total += f.length
	}
	if total == 0 {
		return nil, nil, fmt.Errorf("create torrent of %s: no data (all files are empty)", path)
	}
	pieceLen := opts.PieceLength
	if pieceLen == 0 {
		pieceLen = AutoPieceLength(total)
	}
	pieces, err := hashFiles(ctx, files, total, pieceLen, opts.Workers, opts.Progress)
	if err != nil {
		return nil, nil, err
	}

	info := createdInfo{Name: name, PieceLength: pieceLen, Pieces: pieces}
	if opts.Private {
		info.Private = 1
	}
	if single {
		info.Length = files[0].length
	} else {
		for _, f := range files {
			info.Files = append(info.Files, createdFile{Length: f.length, Path: f.path})
		}
	}
	infoBytes, err := bencode.Marshal(info)
	if err != nil {
		return nil, nil, fmt.Errorf("encode info dictionary: %w", err)
	}
	top := createdMetaInfo{
		Info:      infoBytes,
		Comment:   opts.Comment,
		CreatedBy: opts.CreatedBy,
		URLList:   opts.WebSeeds,
	}
	if top.CreatedBy == "" {
		top.CreatedBy = "torrentfs"
	}
	if !opts.NoDate {
		d := opts.CreationDate
		if d.IsZero() {
			d = time.Now()
		}
		top.CreationDate = d.Unix()
	}
	var tiers [][]string
	nURLs := 0
	for _, tier := range opts.Announce {
		var t []string
		for _, u := range tier {
			if u = strings.TrimSpace(u); u != "" {
				t = append(t, u)
			}
		}
		if len(t) > 0 {
			tiers = append(tiers, t)
			nURLs += len(t)
		}
	}
	if nURLs > 0 {
		top.Announce = tiers[0][0]
	}
	if nURLs > 1 {
		top.AnnounceList = tiers
	}
	data, err := bencode.Marshal(top)
	if err != nil {
		return nil, nil, fmt.Errorf("encode torrent: %w", err)
	}
	// Parsing our own output is the check that it is a torrent every reader of ours accepts,
	// and it gives the MetaInfo with offsets and the info-hash over the exact bytes.
	m, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("created torrent does not parse back: %w", err)
	}
	return m, data, nil
}

// Wire forms written by Create. bencode.Marshal sorts struct keys byte-wise; the field order
// here is that order too, for the reader's sake.
type createdMetaInfo struct {
	Announce     string        `bencode:"announce,omitempty"`
	AnnounceList [][]string    `bencode:"announce-list,omitempty"`
	Comment      string        `bencode:"comment,omitempty"`
	CreatedBy    string        `bencode:"created by,omitempty"`
	CreationDate int64         `bencode:"creation date,omitempty"`
	Info         bencode.Bytes `bencode:"info"`
	URLList      []string      `bencode:"url-list,omitempty"`
}

type createdInfo struct {
	Files       []createdFile `bencode:"files,omitempty"`
	Length      int64         `bencode:"length,omitempty"` // never 0: empty torrents are refused
	Name        string        `bencode:"name"`
	PieceLength int64         `bencode:"piece length"`
	Pieces      []byte        `bencode:"pieces"`
	Private     int64         `bencode:"private,omitempty"`
}

type createdFile struct {
	Length int64    `bencode:"length"` // 0 for empty files, which must still be listed
	Path   []string `bencode:"path"`
}

// collect finds the files under root in torrent order.
func collect(root string) (name string, files []sourceFile, single bool, err error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", nil, false, fmt.Errorf("create torrent of %s: %w", root, err)
	}
	name = filepath.Base(abs)
	if err := checkCreateName(name); err != nil {
		return "", nil, false, fmt.Errorf("create torrent of %s: name %q: %w", root, name, err)
	}
	st, err := os.Stat(root) // follows a symlink given as the root
	if err != nil {
		return "", nil, false, fmt.Errorf("create torrent: %w", err)
	}
	switch {
	case st.Mode().IsRegular():
		return name, []sourceFile{{disk: root, length: st.Size()}}, true, nil
	case st.IsDir():
		w := walker{}
		if err := w.walk(root, nil, st); err != nil {
			return "", nil, false, fmt.Errorf("create torrent of %s: %w", root, err)
		}
		if len(w.files) == 0 {
			return "", nil, false, fmt.Errorf("create torrent of %s: directory has no files", root)
		}
		// Whole paths in byte order, as mktorrent sorts them, so that both make the same
		// torrent of the same data ("a-b" < "a.c" < "a/x", where a walk would put "a/x" first).
		slices.SortFunc(w.files, func(a, b sourceFile) int {
			return strings.Compare(strings.Join(a.path, "/"), strings.Join(b.path, "/"))
		})
		return name, w.files, false, nil
	default:
		return "", nil, false, fmt.Errorf("create torrent of %s: %s is not a regular file or directory", root, st.Mode().Type())
	}
}

type walker struct {
	files []sourceFile
	// ancestors holds the directories on the current path, by device and inode, to notice
	// a symlink that leads back up the tree (which would make the walk endless).
	ancestors []fileID
}

type fileID struct{ dev, ino uint64 }

func idOf(st fs.FileInfo) (fileID, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(s.Dev), ino: uint64(s.Ino)}, true
}

func (w *walker) walk(dir string, rel []string, st fs.FileInfo) error {
	if id, ok := idOf(st); ok {
		if slices.Contains(w.ancestors, id) {
			return fmt.Errorf("%s: symbolic link loop (leads back to a directory above it)", dir)
		}
		w.ancestors = append(w.ancestors, id)
		defer func() { w.ancestors = w.ancestors[:len(w.ancestors)-1] }()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read directory: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := checkCreateName(e.Name()); err != nil {
			return fmt.Errorf("%s: file name cannot go in a torrent: %w", p, err)
		}
		st, err := os.Stat(p) // follows symlinks
		if err != nil {
			if e.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s: broken symbolic link: %w", p, err)
			}
			return err
		}
		childRel := append(slices.Clip(rel), e.Name())
		switch {
		case st.Mode().IsRegular():
			w.files = append(w.files, sourceFile{disk: p, path: childRel, length: st.Size()})
		case st.IsDir():
			if err := w.walk(p, childRel, st); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: special file (%s) cannot go in a torrent", p, st.Mode().Type())
		}
	}
	return nil
}

// checkCreateName applies the parser's rules plus UTF-8: BEP 3 strings are UTF-8, and a name
// in another encoding would show up garbled or be refused elsewhere.
func checkCreateName(n string) error {
	if err := CheckPath([]string{n}); err != nil {
		return err
	}
	if !utf8.ValidString(n) {
		return errors.New("name is not valid UTF-8")
	}
	return nil
}

// chunk is a run of whole pieces read from the byte stream.
type chunk struct {
	first int // index of the first piece
	buf   []byte
}

// hashFiles returns the concatenated SHA-1 hashes of the pieces of the files' byte stream.
func hashFiles(ctx context.Context, files []sourceFile, total, pieceLen int64, workers int, progress func(hashed, total int64)) ([]byte, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	numPieces := int((total + pieceLen - 1) / pieceLen)
	perChunk := max(1, int(readChunk/pieceLen))
	chunkLen := int64(perChunk) * pieceLen

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, workers+2)
	for range workers + 2 {
		free <- nil // buffers are allocated on first use, so small torrents stay small
	}
	work := make(chan chunk)
	type result struct {
		first, n int
		bytes    int64
	}
	done := make(chan result, workers+2)
	out := make([]byte, numPieces*HashSize)

	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		defer close(work)
		readErr = readChunks(ctx, files, total, chunkLen, perChunk, free, work)
	})
	var hashers sync.WaitGroup
	for range workers {
		hashers.Go(func() {
			for c := range work {
				n := 0
				for off := int64(0); off < int64(len(c.buf)); off += pieceLen {
					end := min(off+pieceLen, int64(len(c.buf)))
					h := sha1.Sum(c.buf[off:end])
					copy(out[(c.first+n)*HashSize:], h[:]) // pieces are disjoint: no lock
					n++
				}
				done <- result{first: c.first, n: n, bytes: int64(len(c.buf))}
				free <- c.buf
			}
		})
	}
	wg.Go(func() {
		hashers.Wait()
		close(done)
	})
	var hashed int64
	if progress != nil {
		progress(0, total) // lets a progress bar appear before the first chunk is done
	}
	for r := range done {
		hashed += r.bytes
		if progress != nil {
			progress(hashed, total)
		}
	}
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hash pieces: %w", err)
	}
	if hashed != total {
		return nil, fmt.Errorf("hash pieces: hashed %d bytes of %d", hashed, total)
	}
	return out, nil
}

// readChunks reads the files back to back into chunks of whole pieces and sends them to work.
func readChunks(ctx context.Context, files []sourceFile, total, chunkLen int64, perChunk int, free chan []byte, work chan<- chunk) error {
	var (
		fi    int      // current file
		f     *os.File // open handle of files[fi], nil between files
		fLeft int64    // bytes of files[fi] still to read
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	piece := 0
	for pos := int64(0); pos < total; {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return nil // Create reports ctx.Err()
		}
		n := min(chunkLen, total-pos)
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		for filled := 0; filled < len(buf); {
			if f == nil {
				for files[fi].length == 0 {
					fi++
				}
				var err error
				if f, err = os.Open(files[fi].disk); err != nil {
					return fmt.Errorf("hash pieces: %w", err)
				}
				fLeft = files[fi].length
			}
			want := min(int64(len(buf)-filled), fLeft)
			got, err := io.ReadFull(f, buf[filled:filled+int(want)])
			filled += got
			fLeft -= int64(got)
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					return fmt.Errorf("hash pieces: %s shrank while being read", files[fi].disk)
				}
				return fmt.Errorf("hash pieces: read %s: %w", files[fi].disk, err)
			}
			if fLeft == 0 {
				f.Close()
				f = nil
				fi++
			}
		}
		select {
		case work <- chunk{first: piece, buf: buf}:
		case <-ctx.Done():
			return nil
		}
		pos += n
		piece += perChunk
	}
	return nil
}
