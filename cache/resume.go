package cache

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"torrentfs/bitfield"
	"torrentfs/internal/atomicfile"
)

// The resume file lets a restart trust the have set without hashing, when nothing touched
// the files since it was written. It is only a hint: any doubt (other torrent, a file's
// size or mtime changed, unreadable) means a full Check.

const stateVersion = 1

type stateFile struct {
	Version int         `json:"version"`
	Torrent string      `json:"torrent"` // SHA-1 over name, piece length and piece hashes
	Have    []byte      `json:"have"`    // wire-layout bitfield
	Files   []stateStat `json:"files"`
}

type stateStat struct {
	Size  int64 `json:"size"` // -1: missing
	MTime int64 `json:"mtime_ns"`
}

func (s *Storage) torrentID() string {
	h := sha1.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00", s.info.Name, s.info.PieceLength, s.info.TotalLength)
	for _, p := range s.info.Pieces {
		h.Write(p[:])
	}
	if s.info.Pieces == nil {
		// A v2-only torrent: its files' pieces roots commit to the data as piece hashes do.
		for _, f := range s.info.Files {
			h.Write(f.PiecesRoot[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Storage) fileStats() []stateStat {
	out := make([]stateStat, len(s.info.Files))
	for i, f := range s.info.Files {
		out[i] = stateStat{Size: -1}
		if f.Padding {
			continue
		}
		if st, err := os.Stat(s.files.paths[i]); err == nil {
			out[i] = stateStat{Size: st.Size(), MTime: st.ModTime().UnixNano()}
		}
	}
	return out
}

// FileStats is a snapshot of the files' sizes and modification times for SaveState.
type FileStats []stateStat

// StatFiles takes the snapshot SaveState needs. Take it before the have set: a piece that
// changes between the two then shows up as an mtime mismatch, never as a stale bit that
// is trusted.
func (s *Storage) StatFiles() FileStats { return s.fileStats() }

// SaveState writes the resume file (if Options.StateFile is set) atomically: temp file,
// fsync, rename. have must have been taken after stats.
func (s *Storage) SaveState(have bitfield.Bitfield, stats FileStats) error {
	if s.opts.StateFile == "" || s.opts.ReadOnly {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	st := stateFile{Version: stateVersion, Torrent: s.torrentID(), Files: stats, Have: have.Bytes()}
	data, err := json.Marshal(&st)
	if err != nil {
		return fmt.Errorf("encode resume file: %w", err)
	}
	path := s.opts.StateFile
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("write resume file %s: %w", path, err)
	}
	return nil
}

// loadState returns the saved have set if the resume file exists, belongs to this torrent
// and every file still has the size and mtime it had when the file was written.
func (s *Storage) loadState() (bitfield.Bitfield, bool) {
	data, err := os.ReadFile(s.opts.StateFile)
	if err != nil {
		return bitfield.Bitfield{}, false
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil || st.Version != stateVersion ||
		st.Torrent != s.torrentID() || len(st.Files) != len(s.info.Files) {
		s.log.Debug("resume file is not for this torrent or unreadable; checking pieces")
		return bitfield.Bitfield{}, false
	}
	have, err := bitfield.FromBytes(st.Have, s.info.NumPieces())
	if err != nil {
		return bitfield.Bitfield{}, false
	}
	now := s.fileStats()
	for i := range now {
		if now[i] != st.Files[i] {
			s.log.WithField("file", s.files.paths[i]).Debug("file changed since the resume file; checking pieces")
			return bitfield.Bitfield{}, false
		}
	}
	return have, true
}
