package library

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/metainfo"
)

// maxWatchFile bounds what is read of a watched file: a .torrent of a very large torrent
// is a few MiB; a .magnet is a line.
const (
	maxTorrentFile = 32 << 20
	maxMagnetFile  = 64 << 10
)

// ReadMagnetFile finds the magnet link in a .magnet file's bytes: the first line that is
// not empty and not a comment ('#'), which must be a magnet link. A UTF-8 byte-order mark
// and surrounding white space are ignored.
func ReadMagnetFile(b []byte) (*metainfo.Magnet, string, error) {
	if len(b) > maxMagnetFile {
		return nil, "", fmt.Errorf("a .magnet file of %d bytes: want one link", len(b))
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxMagnetFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !metainfo.IsMagnet(line) {
			return nil, "", errors.New("the first line is not a magnet link")
		}
		m, err := metainfo.ParseMagnet(line)
		if err != nil {
			return nil, "", err
		}
		return m, line, nil
	}
	if err := sc.Err(); err != nil {
		return nil, "", err
	}
	return nil, "", errors.New("no magnet link in the file")
}

// Watcher adds the torrents of the .torrent and .magnet files in a directory and removes
// them when their files are deleted.
type Watcher struct {
	dir   string
	lib   *Library
	log   *logrus.Entry
	every time.Duration
	// Settle is how long a file that does not parse may still be being written: its errors
	// are only reported once it is older than this.
	settle time.Duration

	files map[string]*watched // by file name; owned by the polling goroutine
}

type watched struct {
	size    int64
	mtime   time.Time
	hash    metainfo.Hash
	added   bool // we added it, so we remove it
	errSaid bool
}

// NewWatcher watches dir for lib, polling every interval (a second if 0). Polling, not
// inotify: it works the same on every file system (NFS, FUSE, bind mounts) and a second
// is quick enough for a file dropped by a script.
func NewWatcher(dir string, lib *Library, interval time.Duration, log *logrus.Entry) (*Watcher, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("--watch: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("--watch: %s is not a directory", dir)
	}
	if interval <= 0 {
		interval = time.Second
	}
	return &Watcher{dir: dir, lib: lib, log: log.WithField("watch", dir), every: interval, settle: 5 * time.Second, files: map[string]*watched{}}, nil
}

// Run polls until ctx ends. The first scan happens at once.
func (w *Watcher) Run(ctx context.Context) {
	tk := time.NewTicker(w.every)
	defer tk.Stop()
	for {
		w.Scan()
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// Scan looks at the directory once: new or changed files are added, files gone are removed.
func (w *Watcher) Scan() {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		w.log.WithError(err).Warn("cannot read the watched directory")
		return
	}
	seen := map[string]bool{}
	for _, de := range ents {
		name := de.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if ext != ".torrent" && ext != ".magnet" || strings.HasPrefix(name, ".") {
			continue
		}
		info, err := os.Stat(filepath.Join(w.dir, name)) // follows symlinks
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		seen[name] = true
		old := w.files[name]
		if old != nil && old.size == info.Size() && old.mtime.Equal(info.ModTime()) {
			continue
		}
		w.files[name] = w.load(name, info, ext, old)
	}
	for name, wf := range w.files {
		if !seen[name] {
			w.forget(name, wf)
			delete(w.files, name)
		}
	}
}

// load reads and adds one file. A file that does not parse is retried while it may still
// be being written, then reported once.
func (w *Watcher) load(name string, info os.FileInfo, ext string, old *watched) *watched {
	wf := &watched{size: info.Size(), mtime: info.ModTime()}
	spec, err := w.readSpec(name, ext, info.Size())
	if err == nil && old != nil && old.added {
		// Rewritten: the same torrent stays; another one replaces it.
		if h, herr := specHash(spec); herr == nil && h == old.hash {
			wf.hash, wf.added = old.hash, true
			return wf
		}
		w.forget(name, old)
	}
	if err == nil {
		var e *Entry
		e, err = w.lib.Add(spec)
		switch {
		case err == nil:
			wf.hash, wf.added = e.Hash, true
			return wf
		case errors.Is(err, ErrExists):
			w.log.Infof("%s: %v", name, err)
			return wf // someone else's: deleting the file leaves it alone
		}
	}
	if time.Since(info.ModTime()) < w.settle {
		return old // try again next scan: it may be half written
	}
	if old != nil && old.added {
		w.forget(name, old) // rewritten with something that is no torrent
	}
	if old == nil || !old.errSaid {
		w.log.Warnf("%s: %v", name, err)
	}
	wf.errSaid = true
	return wf
}

func (w *Watcher) readSpec(name, ext string, size int64) (Spec, error) {
	limit := int64(maxTorrentFile)
	if ext == ".magnet" {
		limit = maxMagnetFile
	}
	if size > limit {
		return Spec{}, fmt.Errorf("%d bytes is too big for a %s file", size, ext)
	}
	b, err := os.ReadFile(filepath.Join(w.dir, name))
	if err != nil {
		return Spec{}, err
	}
	origin := "watch:" + name
	if ext == ".magnet" {
		_, link, err := ReadMagnetFile(b)
		if err != nil {
			return Spec{}, err
		}
		return Spec{Magnet: link, Origin: origin}, nil
	}
	return Spec{Torrent: b, Origin: origin}, nil
}

func (w *Watcher) forget(name string, wf *watched) {
	if wf == nil || !wf.added {
		return
	}
	if _, err := w.lib.Remove(wf.hash.HexString(), false); err != nil {
		w.log.Debugf("%s is gone: %v", name, err)
		return
	}
	w.log.Infof("%s is gone: torrent removed", name)
}

// specHash is the info-hash spec names (its swarm's: see Entry.Hash).
func specHash(s Spec) (metainfo.Hash, error) {
	if s.Torrent != nil {
		mi, err := metainfo.Parse(s.Torrent)
		if err != nil {
			return metainfo.Hash{}, err
		}
		return mi.SwarmHash(), nil
	}
	m, err := metainfo.ParseMagnet(s.Magnet)
	if err != nil {
		return metainfo.Hash{}, err
	}
	return m.SwarmHash(), nil
}
