package metainfo

// Building .torrent files from data on disk. Create walks the path, then one reader goroutine
// reads the files as one sequential byte stream in large chunks (with pad files' zeros for
// v2 and hybrid torrents) while hasher goroutines (one per core) hash whole pieces of those
// chunks: SHA-1 for v1, the piece's merkle subtree of SHA-256 block hashes for v2. Create's
// own goroutine collects the hashes and calls the progress callback; it owns the result.
// Memory is bounded by the chunk buffers in flight: (workers+2) chunks of max(4 MiB, piece
// length), plus 32 bytes a piece for v2.

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
	"sort"
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
	// Version is V1 (the default), V2 (BEP 52 only) or Hybrid (both, with BEP 47 pad files
	// so that the v1 view has every file start on a piece boundary).
	Version Version
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
	disk   string   // path to open; empty for a pad file
	path   []string // path below the torrent's name; nil for a single-file torrent
	length int64
	pad    bool // BEP 47 pad file: zeros, read from nowhere
}

// Create makes a torrent of the file or directory at path: a file gives a single-file
// torrent, a directory a multi-file torrent named after it. It returns the parsed torrent
// and the bytes of the .torrent file, whose keys are sorted as BEP 3 requires.
//
// Files are taken in byte-wise order of their whole paths below path, hidden files included;
// v2 and hybrid torrents take them in file tree order (byte-wise per directory), as libtorrent
// does. Symbolic links are followed (the file appears under the link's name); a link to one
// of its own ancestor directories is an error, as are broken links and special files
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
	info := createdInfo{Name: name, PieceLength: pieceLen}
	if opts.Private {
		info.Private = 1
	}
	var layers bencode.Bytes
	if opts.Version.HasV2() {
		if files, total, err = padSources(files, single, pieceLen); err != nil {
			return nil, nil, err
		}
	}
	h, err := hashFiles(ctx, files, total, pieceLen, opts)
	if err != nil {
		return nil, nil, err
	}
	if opts.Version.HasV1() {
		info.Pieces = h.v1
		if single {
			info.Length = files[0].length
		} else {
			for _, f := range files {
				cf := createdFile{Length: f.length, Path: f.path}
				if f.pad {
					cf.Attr = "p"
				}
				info.Files = append(info.Files, cf)
			}
		}
	}
	if opts.Version.HasV2() {
		info.MetaVersion = 2
		if info.FileTree, layers, err = fileTree(name, files, h.v2, pieceLen); err != nil {
			return nil, nil, err
		}
	}
	infoBytes, err := bencode.Marshal(info)
	if err != nil {
		return nil, nil, fmt.Errorf("encode info dictionary: %w", err)
	}
	top := createdMetaInfo{
		Info:        infoBytes,
		PieceLayers: layers,
		Comment:     opts.Comment,
		CreatedBy:   opts.CreatedBy,
		URLList:     opts.WebSeeds,
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
	PieceLayers  bencode.Bytes `bencode:"piece layers,omitempty"` // v2: always a dictionary, maybe empty
	URLList      []string      `bencode:"url-list,omitempty"`
}

type createdInfo struct {
	FileTree    map[string]any `bencode:"file tree,omitempty"`
	Files       []createdFile  `bencode:"files,omitempty"`
	Length      int64          `bencode:"length,omitempty"` // never 0: empty torrents are refused
	MetaVersion int64          `bencode:"meta version,omitempty"`
	Name        string         `bencode:"name"`
	PieceLength int64          `bencode:"piece length"`
	Pieces      []byte         `bencode:"pieces,omitempty"` // never empty in a torrent with v1
	Private     int64          `bencode:"private,omitempty"`
}

type createdFile struct {
	Attr   string   `bencode:"attr,omitempty"` // "p" for BEP 47 pad files
	Length int64    `bencode:"length"`         // 0 for empty files, which must still be listed
	Path   []string `bencode:"path"`
}

// createdTreeFile is a file's properties in a v2 file tree, under the key "".
type createdTreeFile struct {
	Length     int64  `bencode:"length"`
	PiecesRoot []byte `bencode:"pieces root,omitempty"` // absent for empty files
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

// pieceHashes are what hashFiles computes: the v1 SHA-1 of every piece of the byte stream,
// concatenated, and the v2 hash of every piece (see pieceRootV2), each for what the torrent's
// version needs.
type pieceHashes struct {
	v1 []byte
	v2 []Hash256
}

// hashFiles hashes the pieces of the files' byte stream. For v2 the stream must have every
// non-empty file start on a piece boundary (padSources).
func hashFiles(ctx context.Context, files []sourceFile, total, pieceLen int64, opts CreateOptions) (pieceHashes, error) {
	workers, progress := opts.Workers, opts.Progress
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
	var out pieceHashes
	var owners []v2Owner
	if opts.Version.HasV1() {
		out.v1 = make([]byte, numPieces*HashSize)
	}
	if opts.Version.HasV2() {
		out.v2 = make([]Hash256, numPieces)
		owners = v2Owners(files, pieceLen)
	}

	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		defer close(work)
		readErr = readChunks(ctx, files, total, chunkLen, perChunk, free, work)
	})
	var hashers sync.WaitGroup
	for range workers {
		hashers.Go(func() {
			var scratch []Hash256
			if out.v2 != nil {
				scratch = make([]Hash256, pieceLen/BlockSize)
			}
			for c := range work {
				n := 0
				for off := int64(0); off < int64(len(c.buf)); off += pieceLen {
					piece := c.buf[off:min(off+pieceLen, int64(len(c.buf)))]
					p := c.first + n // pieces are disjoint: no lock
					if out.v1 != nil {
						h := sha1.Sum(piece)
						copy(out.v1[p*HashSize:], h[:])
					}
					if out.v2 != nil {
						if data, width, ok := pieceOwner(owners, p, pieceLen); ok {
							out.v2[p] = pieceRootV2(piece[:data], width, scratch)
						}
					}
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
		return pieceHashes{}, readErr
	}
	if err := ctx.Err(); err != nil {
		return pieceHashes{}, fmt.Errorf("hash pieces: %w", err)
	}
	if hashed != total {
		return pieceHashes{}, fmt.Errorf("hash pieces: hashed %d bytes of %d", hashed, total)
	}
	return out, nil
}

// v2Owner is a non-empty file of a v2 byte stream: the piece it starts at and its length.
type v2Owner struct {
	first  int
	length int64
}

func v2Owners(files []sourceFile, pieceLen int64) []v2Owner {
	var owners []v2Owner
	var off int64
	for _, f := range files {
		if !f.pad && f.length > 0 {
			owners = append(owners, v2Owner{first: int(off / pieceLen), length: f.length})
		}
		off += f.length
	}
	return owners
}

// pieceOwner says how many bytes of piece p are its file's data (the rest is padding) and how
// many leaves its merkle subtree has (see pieceRootV2).
func pieceOwner(owners []v2Owner, p int, pieceLen int64) (data, width int, ok bool) {
	j := sort.Search(len(owners), func(j int) bool { return owners[j].first > p }) - 1
	if j < 0 {
		return 0, 0, false
	}
	o := owners[j]
	left := o.length - int64(p-o.first)*pieceLen
	if left <= 0 {
		return 0, 0, false
	}
	if o.length <= pieceLen {
		return int(o.length), int((o.length + BlockSize - 1) / BlockSize), true
	}
	return int(min(left, pieceLen)), int(pieceLen / BlockSize), true
}

// padSources puts the files in v2 tree order (each directory's entries sorted byte-wise, as
// bencoding sorts the tree's keys) and adds the pad files padFiles calls for. It returns the
// new stream's length.
func padSources(files []sourceFile, single bool, pieceLen int64) ([]sourceFile, int64, error) {
	if single {
		return files, files[0].length, nil
	}
	slices.SortFunc(files, func(a, b sourceFile) int { return slices.Compare(a.path, b.path) })
	layout := make([]File, len(files))
	for i, f := range files {
		layout[i] = File{Path: f.path, Length: f.length}
	}
	padded, total, err := padFiles(layout, pieceLen)
	if err != nil {
		return nil, 0, fmt.Errorf("create torrent: %w", err)
	}
	out := make([]sourceFile, 0, len(padded))
	k := 0
	for _, f := range padded {
		if f.Padding {
			out = append(out, sourceFile{path: f.Path, length: f.Length, pad: true})
		} else {
			out = append(out, files[k])
			k++
		}
	}
	return out, total, nil
}

// fileTree builds the v2 file tree and the encoded piece layers from the files of a v2 byte
// stream and the v2 hashes of its pieces. A single file sits at the top, named name.
func fileTree(name string, files []sourceFile, pieces []Hash256, pieceLen int64) (map[string]any, bencode.Bytes, error) {
	tree := map[string]any{}
	layers := map[string]string{}
	var off int64
	for _, f := range files {
		first := int(off / pieceLen)
		off += f.length
		if f.pad {
			continue
		}
		leaf := createdTreeFile{Length: f.length}
		if f.length > 0 {
			n := int((f.length + pieceLen - 1) / pieceLen)
			root := pieces[first]
			if n > 1 {
				layer := slices.Clone(pieces[first : first+n])
				var b strings.Builder
				for _, h := range layer {
					b.Write(h[:])
				}
				root = merkleRoot(layer, zeroSubtree(pieceLen/BlockSize), n)
				layers[string(root[:])] = b.String()
			}
			leaf.PiecesRoot = root[:]
		}
		path := f.path
		if path == nil {
			path = []string{name}
		}
		dir := tree
		for _, c := range path[:len(path)-1] {
			sub, ok := dir[c].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dir[c] = sub
			}
			dir = sub
		}
		dir[path[len(path)-1]] = map[string]any{"": leaf}
	}
	enc, err := bencode.Marshal(layers)
	if err != nil {
		return nil, nil, fmt.Errorf("encode piece layers: %w", err)
	}
	return tree, enc, nil
}

// readChunks reads the files back to back into chunks of whole pieces and sends them to work.
func readChunks(ctx context.Context, files []sourceFile, total, chunkLen int64, perChunk int, free chan []byte, work chan<- chunk) error {
	var (
		fi    int      // current file
		f     *os.File // open handle of files[fi]; nil between files and for pad files
		fLeft int64    // bytes of files[fi] still to read; 0 between files
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
			if fLeft == 0 {
				for files[fi].length == 0 {
					fi++
				}
				fLeft = files[fi].length
				if !files[fi].pad {
					var err error
					if f, err = os.Open(files[fi].disk); err != nil {
						return fmt.Errorf("hash pieces: %w", err)
					}
				}
			}
			want := int(min(int64(len(buf)-filled), fLeft))
			got := want
			if f == nil {
				clear(buf[filled : filled+want]) // a pad file's zeros (buffers are reused)
			} else {
				var err error
				if got, err = io.ReadFull(f, buf[filled:filled+want]); err != nil {
					if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
						return fmt.Errorf("hash pieces: %s shrank while being read", files[fi].disk)
					}
					return fmt.Errorf("hash pieces: read %s: %w", files[fi].disk, err)
				}
			}
			filled += got
			fLeft -= int64(got)
			if fLeft == 0 {
				if f != nil {
					f.Close()
					f = nil
				}
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
