package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"torrentfs/metainfo"
)

// ErrReadOnly is returned by writes to a storage opened with Options.ReadOnly.
var ErrReadOnly = errors.New("storage is read-only")

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("storage is closed")

// DefaultMaxOpenFiles bounds open file handles when Options.MaxOpenFiles is 0.
const DefaultMaxOpenFiles = 64

// Options tune Open.
type Options struct {
	// ReadOnly serves existing data without ever creating, writing or resizing a file;
	// missing files just mean missing pieces.
	ReadOnly bool
	// StateFile, if set, is where a small resume file is kept (have set plus each file's
	// size and mtime) so a restart with untouched files skips re-hashing.
	StateFile string
	// MaxOpenFiles bounds open file handles; 0 means DefaultMaxOpenFiles.
	MaxOpenFiles int
	// Log receives per-piece Debug and eviction events; nil discards them.
	Log *logrus.Entry
}

// Storage is one torrent's pieces on disk: passive I/O. It keeps no record of which pieces
// are there (the owner's Ledger does) and serves whatever bytes the files hold; its callers
// read only pieces they know to be verified and stored. Safe for concurrent use.
type Storage struct {
	mi    *metainfo.MetaInfo // what pieces hash to (metainfo.PieceCheck)
	info  *metainfo.Info     // &mi.Info: the geometry
	dir   string
	opts  Options
	log   *logrus.Entry
	files *fileCache

	hashed atomic.Int64 // pieces hashed by Check and HashPiece; tests read it

	saveMu sync.Mutex // one resume-file writer at a time

	closed atomic.Bool
}

// Open prepares storage for mi's files under dir. It creates zero-length files (so a
// finished download has every file) and fixes the size of existing files that are wrong, but
// writes no data; call Check to find what is already there. mi must be able to verify every
// piece (metainfo.MetaInfo.CheckVerifiable): a v2-only torrent needs its piece layers.
func Open(dir string, mi *metainfo.MetaInfo, opts Options) (*Storage, error) {
	info := &mi.Info
	if info.PieceLength <= 0 {
		return nil, fmt.Errorf("open storage for %q: bad geometry", info.Name)
	}
	if err := mi.CheckVerifiable(); err != nil {
		return nil, fmt.Errorf("open storage for %q: %w", info.Name, err)
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
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = discard{}
		log = logrus.NewEntry(l)
	}
	s := &Storage{
		mi:    mi,
		info:  info,
		dir:   dir,
		opts:  opts,
		log:   log,
		files: newFileCache(paths, lengths, opts.ReadOnly, opts.MaxOpenFiles),
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

// Dir is the directory the torrent's files live under.
func (s *Storage) Dir() string { return s.dir }

// Info is the torrent geometry the storage was opened with.
func (s *Storage) Info() *metainfo.Info { return s.info }

// Close closes all files. Reads and writes after Close fail with ErrClosed. The owner
// saves the resume file (SaveState) first, with its final have set.
func (s *Storage) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.files.close()
	return nil
}
