package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/sirupsen/logrus"

	"torrentfs/bitfield"
	"torrentfs/metainfo"
)

// ErrNotPresent is returned by reads of ranges whose pieces are not (or no longer) stored.
// Callers check HasPiece first; this is the guard that keeps zeros from being served.
var ErrNotPresent = errors.New("piece not present")

// ErrReadOnly is returned by writes to a storage opened with Options.ReadOnly.
var ErrReadOnly = errors.New("storage is read-only")

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("storage is closed")

// DefaultMaxOpenFiles bounds open file handles when Options.MaxOpenFiles is 0.
const DefaultMaxOpenFiles = 64

// Options tune Open.
type Options struct {
	// ReadOnly serves existing data without ever creating, writing or resizing a file;
	// missing files just mean missing pieces. MaxBytes is ignored then.
	ReadOnly bool
	// MaxBytes > 0 bounds the bytes of verified pieces kept on disk (the mount's cache);
	// least recently read unpinned pieces are evicted to stay under it. 0 keeps everything.
	MaxBytes int64
	// StateFile, if set, is where a small resume file is kept (have set plus each file's
	// size and mtime) so a restart with untouched files skips re-hashing.
	StateFile string
	// StateEvery is how many newly verified pieces trigger a resume-file write between
	// Close calls; 0 means 256.
	StateEvery int
	// MaxOpenFiles bounds open file handles; 0 means DefaultMaxOpenFiles.
	MaxOpenFiles int
	// Log receives per-piece Debug and eviction events; nil discards them.
	Log *logrus.Entry
}

// Storage is one torrent's pieces on disk. Safe for concurrent use.
type Storage struct {
	info  *metainfo.Info
	dir   string
	opts  Options
	log   *logrus.Entry
	files *fileCache

	hashed atomic.Int64 // pieces hashed by Check and VerifyPiece; tests read it

	saveMu sync.Mutex // one resume-file writer at a time

	mu          sync.Mutex
	closed      bool
	have        bitfield.Bitfield
	dirty       bitfield.Bitfield // written since last verified or discarded: in flight
	dirtyBytes  int64             // their size; in bounded mode they count against the bound
	haveBytes   int64
	sinceSave   int
	pins        []int32                       // bounded mode only; includes readers' transient pins
	lru         *simplelru.LRU[int, struct{}] // present and unpinned pieces, oldest read first
	pinnedBytes int64                         // bytes of present pieces that are pinned
	evicted     []int                         // evictions not yet taken by the owner
	evictSig    chan struct{}                 // cap 1: "evicted is not empty"
}

// Open prepares storage for info under dir. It creates zero-length files (so a finished
// download has every file) and fixes the size of existing files that are wrong, but writes
// no data; call Check to find what is already there.
func Open(dir string, info *metainfo.Info, opts Options) (*Storage, error) {
	if info.PieceLength <= 0 || len(info.Pieces) == 0 && info.TotalLength > 0 {
		return nil, fmt.Errorf("open storage for %q: bad geometry", info.Name)
	}
	paths, err := filePaths(dir, info)
	if err != nil {
		return nil, fmt.Errorf("open storage for %q: %w", info.Name, err)
	}
	lengths := make([]int64, len(info.Files))
	for i, f := range info.Files {
		lengths[i] = f.Length
	}
	if opts.MaxOpenFiles <= 0 {
		opts.MaxOpenFiles = DefaultMaxOpenFiles
	}
	if opts.ReadOnly {
		// Nothing is ever written, so there is nothing to bound, and punching holes would
		// destroy the very data being seeded.
		opts.MaxBytes = 0
	}
	if opts.StateEvery <= 0 {
		opts.StateEvery = 256
	}
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = discard{}
		log = logrus.NewEntry(l)
	}
	s := &Storage{
		info:     info,
		dir:      dir,
		opts:     opts,
		log:      log,
		files:    newFileCache(paths, lengths, opts.ReadOnly, opts.MaxOpenFiles),
		have:     bitfield.New(info.NumPieces()),
		dirty:    bitfield.New(info.NumPieces()),
		evictSig: make(chan struct{}, 1),
	}
	if opts.MaxBytes > 0 {
		s.pins = make([]int32, info.NumPieces())
		s.lru, _ = simplelru.NewLRU[int, struct{}](info.NumPieces()+1, nil)
	}
	if !opts.ReadOnly {
		if err := s.prepareFiles(paths); err != nil {
			s.files.close()
			return nil, err
		}
	}
	return s, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// prepareFiles creates empty files and fixes sizes of existing ones without opening every
// file for long (the handle cache stays small).
func (s *Storage) prepareFiles(paths []string) error {
	for i, f := range s.info.Files {
		if f.Padding {
			continue
		}
		st, err := os.Stat(paths[i])
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if f.Length > 0 {
				continue // created on first write
			}
		case err != nil:
			return fmt.Errorf("open storage for %q: %w", s.info.Name, err)
		case st.IsDir():
			return fmt.Errorf("%s is a directory, the torrent has a file there", paths[i])
		case st.Size() == f.Length:
			continue
		}
		h, err := s.files.get(i, true)
		if err != nil {
			return fmt.Errorf("open storage for %q: %w", s.info.Name, err)
		}
		s.files.put(h)
	}
	return nil
}

// Info is the torrent geometry the storage was opened with.
func (s *Storage) Info() *metainfo.Info { return s.info }

// Have returns a copy of the set of verified pieces.
func (s *Storage) Have() bitfield.Bitfield {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.have.Clone()
}

// HasPiece tells whether piece i is verified and stored.
func (s *Storage) HasPiece(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.have.Has(i)
}

// Complete tells whether every piece is stored.
func (s *Storage) Complete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.have.All()
}

// BytesCompleted is the number of torrent bytes in stored pieces.
func (s *Storage) BytesCompleted() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.haveBytes
}

// Dirty tells whether piece i has been written to since it was last verified or discarded.
func (s *Storage) Dirty(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dirty.Has(i)
}

// Bounded tells whether the storage evicts (Options.MaxBytes > 0).
func (s *Storage) Bounded() bool { return s.opts.MaxBytes > 0 }

// Close closes all files and writes the resume file if one is configured. Reads and
// writes after Close fail with ErrClosed.
func (s *Storage) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var err error
	if s.opts.StateFile != "" && !s.opts.ReadOnly {
		err = s.saveState()
	}
	s.files.close()
	return err
}

// roomLocked is how many bytes of verified pieces could still be admitted without going
// over MaxBytes, counting unpinned pieces as evictable.
func (s *Storage) roomLocked() int64 {
	if s.opts.MaxBytes <= 0 {
		return math.MaxInt64
	}
	return s.opts.MaxBytes - s.pinnedBytes
}
